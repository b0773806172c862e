export default function Loading() {
  return <p className="loading">Loading…</p>;
}
