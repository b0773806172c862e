"""Parses Prometheus text exposition on stdin with the official client library's parser and
prints the families as JSON: {name: {"type": ..., "samples": [[name, labels, value], ...]}}.
Exits non-zero if the text does not parse."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
json.dump(families, sys.stdout)
