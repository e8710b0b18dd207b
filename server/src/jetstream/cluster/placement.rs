//! Where a replicated stream's copies go: the `placement` of its config (`cluster`,
//! `tags`) against the JetStream servers of the meta group, each known with the
//! `server_tags` its hello announces.
//!
//! Recorded from nats-server 2.15.1 (three servers of cluster `C` tagged `[az:1, ssd]`,
//! `[az:2, ssd]`, `[az:3]`):
//! * tags are lower-cased (`server_tags` and the request's: `SSD` matches `ssd`); a
//!   server fits when it has every tag asked for;
//! * a stream of one replica with tags goes to a server that fits, not necessarily the
//!   one asked (without tags rill keeps it on the server asked);
//! * fewer fitting servers than replicas (`R3` on `ssd`, `R1` on `nope`, `R1` on
//!   `[az:1, az:2]`): 400/10005 `no suitable peers for placement, tags not matched
//!   ['ssd']`, every tag listed as asked (`'NOPE'` stays upper case; 2.15.1's order
//!   varies, rill keeps the request's);
//! * another cluster's name: 400/10005 `no suitable peers for placement`;
//! * a server outside a cluster ignores `placement` (any tags or cluster are kept in
//!   the config and the stream is created).

use rand::seq::SliceRandom as _;
use rill_protocol::jsapi::{ApiError, ErrorCode, Placement};

/// A JetStream server a copy may go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its `server_name`.
    pub name: String,
    /// Its `server_tags`, lower-cased.
    pub tags: Vec<String>,
}

/// Lower-cased tags, as nats-server keeps them.
pub fn normalize(tags: &[String]) -> Vec<String> {
    tags.iter().map(|t| t.to_lowercase()).collect()
}

/// The servers for `replicas` copies in cluster `cluster`, among `live` (this server
/// first): those that fit `placement`, at random, except that one copy without tags
/// stays on this server (the first).
///
/// # Errors
/// 400/10005 when another cluster is named or too few servers fit.
pub fn place(
    live: &[Candidate],
    replicas: usize,
    cluster: &str,
    placement: Option<&Placement>,
) -> Result<Vec<String>, ApiError> {
    let no_peers = || ErrorCode::CLUSTER_NO_PEERS.err("no suitable peers for placement");
    let (wanted_cluster, tags) = placement.map_or((None, Vec::new()), |p| {
        (
            Some(p.cluster.as_str()).filter(|c| !c.is_empty()),
            normalize(&p.tags),
        )
    });
    if wanted_cluster.is_some_and(|c| c != cluster) {
        return Err(no_peers());
    }
    let mut fit: Vec<&Candidate> = live
        .iter()
        .filter(|c| tags.iter().all(|t| c.tags.contains(t)))
        .collect();
    if fit.len() < replicas || replicas == 0 {
        if tags.is_empty() {
            return Err(no_peers());
        }
        let asked = placement.map_or(&[][..], |p| p.tags.as_slice());
        let listed: Vec<String> = asked.iter().map(|t| format!("'{t}'")).collect();
        return Err(ErrorCode::CLUSTER_NO_PEERS.err(format!(
            "no suitable peers for placement, tags not matched [{}]",
            listed.join(", ")
        )));
    }
    if replicas == 1 && tags.is_empty() {
        return Ok(vec![fit[0].name.clone()]);
    }
    fit.shuffle(&mut rand::rng());
    Ok(fit
        .into_iter()
        .take(replicas)
        .map(|c| c.name.clone())
        .collect())
}

/// One of `free` that has every tag of `placement`, at random (a spare for a group that
/// grows or loses a member; the cluster was checked when the stream was placed).
pub fn spare(free: &[Candidate], placement: Option<&Placement>) -> Option<String> {
    use rand::seq::IndexedRandom as _;
    let tags = placement.map_or_else(Vec::new, |p| normalize(&p.tags));
    let fit: Vec<&Candidate> = free
        .iter()
        .filter(|c| tags.iter().all(|t| c.tags.contains(t)))
        .collect();
    fit.choose(&mut rand::rng()).map(|c| c.name.clone())
}

/// Whether every server of `peers` fits `placement` (an update that keeps them needs no
/// move).
pub fn fits(live: &[Candidate], peers: &[String], placement: Option<&Placement>) -> bool {
    let tags = placement.map_or_else(Vec::new, |p| normalize(&p.tags));
    peers.iter().all(|p| {
        live.iter()
            .any(|c| &c.name == p && tags.iter().all(|t| c.tags.contains(t)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Vec<Candidate> {
        [("n0", "az:1 ssd"), ("n1", "az:2 ssd"), ("n2", "az:3")]
            .into_iter()
            .map(|(name, tags)| Candidate {
                name: name.into(),
                tags: tags.split(' ').map(str::to_owned).collect(),
            })
            .collect()
    }

    fn tags(t: &[&str]) -> Placement {
        Placement {
            tags: t.iter().map(|s| (*s).to_owned()).collect(),
            ..Placement::default()
        }
    }

    fn err(r: Result<Vec<String>, ApiError>) -> String {
        let e = r.expect_err("refused");
        format!("{} {} {}", e.code, e.err_code, e.description)
    }

    /// The answers nats-server 2.15.1 gave for the same three servers.
    #[test]
    fn placement_by_tags_and_cluster_as_nats_server() {
        let live = three();
        let on = |n, p: Placement| {
            let mut v = place(&live, n, "C", Some(&p)).expect("placed");
            v.sort();
            v
        };
        assert_eq!(on(1, tags(&["az:3"])), ["n2"]);
        assert_eq!(on(1, tags(&["SSD"])).len(), 1);
        assert_eq!(on(2, tags(&["ssd"])), ["n0", "n1"]);
        assert_eq!(on(1, tags(&["az:2"])), ["n1"]);
        let c = Placement {
            cluster: "C".into(),
            tags: vec!["az:2".into()],
            ..Placement::default()
        };
        assert_eq!(on(1, c), ["n1"]);
        assert_eq!(
            err(place(&live, 3, "C", Some(&tags(&["ssd"])))),
            "400 10005 no suitable peers for placement, tags not matched ['ssd']"
        );
        assert_eq!(
            err(place(&live, 1, "C", Some(&tags(&["az:1", "az:2"])))),
            "400 10005 no suitable peers for placement, tags not matched ['az:1', 'az:2']"
        );
        assert_eq!(
            err(place(&live, 1, "C", Some(&tags(&["NOPE"])))),
            "400 10005 no suitable peers for placement, tags not matched ['NOPE']"
        );
        let x = Placement {
            cluster: "X".into(),
            ..Placement::default()
        };
        assert_eq!(
            err(place(&live, 1, "C", Some(&x))),
            "400 10005 no suitable peers for placement"
        );
        assert_eq!(
            err(place(&live, 4, "C", None)),
            "400 10005 no suitable peers for placement"
        );
    }

    #[test]
    fn one_copy_without_tags_stays_on_the_server_asked() {
        assert_eq!(place(&three(), 1, "C", None).expect("placed"), ["n0"]);
    }

    #[test]
    fn an_update_that_keeps_fitting_servers_needs_no_move() {
        let live = three();
        assert!(fits(
            &live,
            &["n0".into(), "n1".into()],
            Some(&tags(&["ssd"]))
        ));
        assert!(!fits(&live, &["n2".into()], Some(&tags(&["ssd"]))));
        assert!(fits(&live, &["n2".into()], None));
    }
}
