//! `/admin`: the overview. Sign-ups, daily active users, sign-in failures and lockouts, mail
//! sent and failing, over the last 30 days, as charts (see [`super::chart`]).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::chart::{self, Series};
use crate::daily::{self, DAY_MS};
use crate::state::Identity;
use crate::users::{self, ListQuery};
use crate::web::pages::{html, unavailable};

/// Days the charts cover.
const DAYS: i64 = 30;

struct Chart {
    id: &'static str,
    title: &'static str,
    total: i64,
    svg: String,
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    users: i64,
    charts: Vec<Chart>,
}

pub(crate) async fn page(State(identity): State<Identity>, headers: HeaderMap) -> Response {
    let now = identity.now_ms();
    let read = async {
        let mut tx = identity.db().begin_read().await?;
        let overview = daily::overview(&mut tx, DAYS, now).await?;
        let users = users::count(&mut tx, &ListQuery::default()).await?;
        tx.commit().await?;
        Ok::<_, latchkey_store::StoreError>((overview, users))
    };
    let Ok((overview, users)) = read.await else {
        return unavailable("/admin/users");
    };
    let labels: Vec<String> = (0..DAYS)
        .map(|i| {
            latchkey_web::time::format_utc((overview.first_day + i) * DAY_MS).1[..10].to_owned()
        })
        .collect();
    let one = |id, title, name, colour, values: &[i64]| Chart {
        id,
        title,
        total: values.iter().sum(),
        svg: chart::bars(
            title,
            &labels,
            &[Series {
                name,
                colour,
                values,
            }],
        ),
    };
    let two = |id, title, first: (&str, &str, &[i64]), second: (&str, &str, &[i64])| Chart {
        id,
        title,
        total: first.2.iter().chain(second.2).sum(),
        svg: chart::bars(
            title,
            &labels,
            &[
                Series {
                    name: first.0,
                    colour: first.1,
                    values: first.2,
                },
                Series {
                    name: second.0,
                    colour: second.1,
                    values: second.2,
                },
            ],
        ),
    };
    let charts = vec![
        one(
            "sign-ups",
            "Sign-ups per day",
            "sign-ups",
            "var(--accent)",
            &overview.sign_ups,
        ),
        one(
            "active",
            "Daily active users",
            "active users",
            "var(--ok)",
            &overview.active_users,
        ),
        two(
            "failures",
            "Sign-in failures and lockouts per day",
            (
                "failed sign-ins",
                "var(--muted)",
                &overview.sign_in_failures,
            ),
            ("lockouts", "var(--danger)", &overview.lockouts),
        ),
        two(
            "mail",
            "Mail sent and failing per day",
            ("sent", "var(--ok)", &overview.mail_sent),
            ("failed", "var(--danger)", &overview.mail_failed),
        ),
    ];
    let issued = identity.csrf().issue(&headers);
    let page = OverviewPage {
        title: "Overview",
        csrf_token: &issued.token,
        users,
        charts,
    };
    html(StatusCode::OK, page.render(), issued.set_cookie.as_slice())
}
