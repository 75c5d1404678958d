//! The simulator's switches for where real regions and credentials differ from the published
//! schema (docs/operations.md "Simulator"), at the HTTP level: the `iamTags` filter refused,
//! expanded listings served from a stale cache unless `Pragma: no-cache`, batch GETs
//! forbidden, servers the key may not read, fresh tasks left out of expanded listings, and the
//! hook that creates a task someone else started. ovhform's use of them is in `api_reality`.

use std::time::Duration;

use ovhform::sim::{Faults, Modes, SimConfig};
use reqwest::Method;
use serde_json::{Value, json};

use crate::sim_support::{self, Api, HYBRID, RAID, WINDOWS, assert_error, start};

const EXPANDED: (&str, &str) = ("X-Pagination-Mode", "CachedObjectList-Pages");
const FRESH: (&str, &str) = ("Pragma", "no-cache");

fn s(sn: &str) -> String {
    format!("/1.0/dedicated/server/{sn}")
}

fn find<'a>(listing: &'a Value, key: &str, value: Value) -> Option<&'a Value> {
    listing.as_array()?.iter().find(|o| o[key] == value)
}

#[tokio::test]
async fn the_iam_tags_filter_can_be_refused() {
    let sim = sim_support::start_default().await;
    let mut api = Api::new(&sim);
    // `{"env":[{"operator":"EXISTS"}]}`: EXISTS without a value, as the console sends it.
    let q =
        "/1.0/dedicated/server?iamTags=%7B%22env%22%3A%5B%7B%22operator%22%3A%22EXISTS%22%7D%5D%7D";
    let ex = api.get(q).await;
    assert_eq!(ex.status.as_u16(), 200, "{}", ex.body);
    assert_eq!(ex.body, json!([HYBRID]));
    sim.set_modes(Modes {
        iam_tags_filter: false,
        ..Modes::default()
    });
    assert_error(&api.get(q).await, 400, "Client::BadRequest");
    assert_eq!(api.get("/1.0/dedicated/server").await.status.as_u16(), 200);
}

#[tokio::test]
async fn a_stale_listing_serves_the_state_before_the_last_change_unless_pragma_no_cache() {
    let sim = start(SimConfig {
        fleet: sim_support::fleet(),
        stale_listing: true,
        ..SimConfig::for_tests()
    })
    .await;
    let mut api = Api::new(&sim);
    let listing = "/1.0/dedicated/server";
    let was = sim.server(HYBRID).unwrap().monitoring;
    // A change through the API.
    let put = api.put(&s(HYBRID), json!({"monitoring": !was})).await;
    assert_eq!(put.status.as_u16(), 200);
    let cached = api
        .send(Method::GET, listing, None, &[EXPANDED], true)
        .await
        .body;
    assert_eq!(
        find(&cached, "name", json!(HYBRID)).unwrap()["monitoring"],
        was
    );
    let fresh = api
        .send(Method::GET, listing, None, &[EXPANDED, FRESH], true)
        .await
        .body;
    assert_eq!(
        find(&fresh, "name", json!(HYBRID)).unwrap()["monitoring"],
        !was
    );
    // Objects read one by one are never stale.
    assert_eq!(api.get(&s(HYBRID)).await.body["monitoring"], !was);
    // A change behind the API's back moves the cache to the state just before it.
    sim.update_server(HYBRID, |srv| srv.os = "debian11_64".into());
    let cached = api
        .send(Method::GET, listing, None, &[EXPANDED], true)
        .await
        .body;
    let hybrid = find(&cached, "name", json!(HYBRID)).unwrap();
    assert_eq!(
        (&hybrid["monitoring"], &hybrid["os"]),
        (&json!(!was), &json!("debian12_64"))
    );
    // Task listings too: a reboot just asked for is not in the cached one.
    let task = api.post(&format!("{}/reboot", s(RAID)), None).await.body["taskId"].clone();
    let tasks = format!("{}/task", s(RAID));
    let cached = api
        .send(Method::GET, &tasks, None, &[EXPANDED], true)
        .await
        .body;
    assert!(find(&cached, "taskId", task.clone()).is_none(), "{cached}");
    let fresh = api
        .send(Method::GET, &tasks, None, &[EXPANDED, FRESH], true)
        .await
        .body;
    assert!(find(&fresh, "taskId", task).is_some(), "{fresh}");
}

#[tokio::test]
async fn batch_gets_can_be_forbidden() {
    let sim = start(SimConfig {
        fleet: sim_support::fleet(),
        batch_forbidden: true,
        ..SimConfig::for_tests()
    })
    .await;
    let mut api = Api::new(&sim);
    let ex = api
        .send(
            Method::GET,
            &s(&format!("{HYBRID},{RAID}")),
            None,
            &[("X-Ovh-Batch", ",")],
            true,
        )
        .await;
    assert_eq!(ex.status.as_u16(), 403, "{}", ex.body);
    assert_eq!(ex.body["errorCode"], "NOT_GRANTED_CALL");
    // One object at a time is granted.
    assert_eq!(api.get(&s(HYBRID)).await.status.as_u16(), 200);
}

#[tokio::test]
async fn a_server_the_key_may_not_read_answers_403_and_is_still_listed() {
    let sim = sim_support::start_default().await;
    sim.update_server(RAID, |srv| srv.access_denied = true);
    let mut api = Api::new(&sim);
    for path in [
        s(RAID),
        format!("{}/task", s(RAID)),
        format!("{}/install/status", s(RAID)),
    ] {
        let ex = api.get(&path).await;
        assert_eq!(ex.status.as_u16(), 403, "{path}: {}", ex.body);
        assert_eq!(ex.body["errorCode"], "NOT_GRANTED_CALL");
    }
    let batch = [("X-Ovh-Batch", ",")];
    let with = api
        .send(
            Method::GET,
            &s(&format!("{HYBRID},{RAID}")),
            None,
            &batch,
            true,
        )
        .await;
    assert_eq!(with.status.as_u16(), 403);
    let without = api
        .send(
            Method::GET,
            &s(&format!("{HYBRID},{WINDOWS}")),
            None,
            &batch,
            true,
        )
        .await;
    assert_eq!(without.status.as_u16(), 200);
    let listed = api
        .send(
            Method::GET,
            "/1.0/dedicated/server",
            None,
            &[EXPANDED],
            true,
        )
        .await
        .body;
    assert!(find(&listed, "name", json!(RAID)).is_some());
}

#[tokio::test]
async fn a_fresh_task_is_left_out_of_expanded_listings_but_counted() {
    let sim = sim_support::start_default().await;
    sim.set_faults(Faults {
        fresh_task_404: 2,
        ..Faults::default()
    });
    let id = sim.create_task(RAID, "hardReboot").expect("server exists");
    let mut api = Api::new(&sim);
    let tasks = format!("{}/task", s(RAID));
    assert_eq!(api.get(&tasks).await.body, json!([id]), "listed");
    let expanded = api.send(Method::GET, &tasks, None, &[EXPANDED], true).await;
    assert_eq!(expanded.body, json!([]), "not readable yet");
    assert_eq!(
        expanded.headers["x-pagination-elements"], "1",
        "but counted"
    );
    let path = format!("{tasks}/{id}");
    for _ in 0..2 {
        assert_error(&api.get(&path).await, 404, "Client::NotFound");
    }
    let t = api.get(&path).await.body;
    assert_eq!(
        (&t["status"], &t["function"]),
        (&json!("init"), &json!("hardReboot"))
    );
    let expanded = api.send(Method::GET, &tasks, None, &[EXPANDED], true).await;
    assert_eq!(expanded.body[0]["taskId"], json!(id));
}

#[tokio::test]
async fn the_task_hook_creates_a_task_someone_else_started() {
    let sim = sim_support::start_default().await;
    let mut api = Api::new(&sim);
    let hook = format!("/_sim/server/{RAID}/task");
    let t = api
        .send(
            Method::POST,
            &hook,
            Some(json!({"function": "reinstallServer"})),
            &[],
            false,
        )
        .await;
    assert_eq!(t.status.as_u16(), 200, "{}", t.body);
    assert_eq!(
        (&t.body["status"], &t.body["function"]),
        (&json!("init"), &json!("reinstallServer"))
    );
    // Not an install this simulator runs: no install status, nothing changes when it ends.
    assert_error(
        &api.get(&format!("{}/install/status", s(RAID))).await,
        404,
        "Client::NotFound",
    );
    let os = sim.server(RAID).unwrap().os;
    sim.advance(Duration::from_secs(3600));
    let id = t.body["taskId"].as_u64().unwrap();
    assert_eq!(
        api.get(&format!("{}/task/{id}", s(RAID))).await.body["status"],
        "done"
    );
    assert_eq!(sim.server(RAID).unwrap().os, os);
    let bad = api
        .send(
            Method::POST,
            &hook,
            Some(json!({"function": "makeCoffee"})),
            &[],
            false,
        )
        .await;
    assert_eq!(bad.status.as_u16(), 400);
    assert_eq!(sim.create_task("nope", "hardReboot"), None);
}
