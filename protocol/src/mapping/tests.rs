//! Table tests: every row is what nats-server 2.15.1 produced for the same mapping (a
//! `mappings {}` entry, a publish on the subject, the subject a `>` subscriber received;
//! recorded 2026-12-04), plus property tests.

use proptest::prelude::*;

use super::*;

fn map(src: &str, dest: &str, subject: &str) -> String {
    SubjectTransform::new(src, dest)
        .unwrap_or_else(|e| panic!("{src} -> {dest}: {e}"))
        .apply_det(subject)
        .unwrap_or_else(|| panic!("{src} does not match {subject}"))
}

#[rustfmt::skip]
const RESULTS: &[(&str, &str, &str, &str)] = &[
    ("a1", "b1", "a1", "b1"),
    ("a2.*", "b2.$1", "a2.x", "b2.x"),
    ("a3.*.*", "b3.{{wildcard(2)}}.{{wildcard(1)}}", "a3.x.y", "b3.y.x"),
    ("a4.>", "b4.>", "a4.x.y.z", "b4.x.y.z"),
    ("a5.*.>", "b5.{{wildcard(1)}}.>", "a5.x.y.z", "b5.x.y.z"),
    ("p1.*", "q1.{{partition(3,1)}}", "p1.customerid1", "q1.0"),
    ("p1.*", "q1.{{partition(3,1)}}", "p1.customerid2", "q1.2"),
    ("p1.*", "q1.{{partition(3,1)}}", "p1.customerid3", "q1.1"),
    ("p1.*", "q1.{{partition(3,1)}}", "p1.customerid4", "q1.2"),
    ("p1.*", "q1.{{partition(3,1)}}", "p1.customerid5", "q1.1"),
    ("p1.*", "q1.{{partition(3,1)}}", "p1.customerid6", "q1.0"),
    ("p1.*", "q1.{{partition(3,1)}}", "p1.abc", "q1.2"),
    ("p2.*.*", "q2.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(10,1,2)}}", "p2.1.a", "q2.1.a.1"),
    ("p2.*.*", "q2.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(10,1,2)}}", "p2.1.b", "q2.1.b.0"),
    ("p2.*.*", "q2.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(10,1,2)}}", "p2.2.b", "q2.2.b.9"),
    ("p2.*.*", "q2.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(10,1,2)}}", "p2.2.a", "q2.2.a.2"),
    ("p2.*.*", "q2.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(10,1,2)}}", "p2.ab.c", "q2.ab.c.1"),
    ("p2.*.*", "q2.{{wildcard(1)}}.{{wildcard(2)}}.{{partition(10,1,2)}}", "p2.a.bc", "q2.a.bc.1"),
    ("p3.x", "q3.{{partition(5)}}", "p3.x", "q3.3"),
    ("p4.*.*", "q4.{{partition(7)}}", "p4.a.b", "q4.4"),
    ("p4.*.*", "q4.{{partition(7)}}", "p4.ab.c", "q4.2"),
    ("p5.*.*", "q5.{{partition(7,2,1)}}", "p5.a.b", "q5.6"),
    ("p5.*.*", "q5.{{partition(7,2,1)}}", "p5.b.a", "q5.2"),
    ("s1.*", "t1.{{split(1,-)}}", "s1.a-b-c", "t1.a.b.c"),
    ("s1.*", "t1.{{split(1,-)}}", "s1.-a--b-", "t1.a.b"),
    ("s1.*", "t1.{{split(1,-)}}", "s1.abc", "t1.abc"),
    ("s1.*", "t1.{{split(1,-)}}", "s1.a-", "t1.a"),
    ("s2.*", "t2.{{split(1,--)}}", "s2.foo--bar", "t2.foo.bar"),
    ("s2.*", "t2.{{split(1,--)}}", "s2.a---b", "t2.a.-b"),
    ("sl.*", "tl.{{splitfromleft(1,4)}}", "sl.1234567", "tl.1234.567"),
    ("sl.*", "tl.{{splitfromleft(1,4)}}", "sl.12", "tl.12"),
    ("sl.*", "tl.{{splitfromleft(1,4)}}", "sl.1234", "tl.1234"),
    ("sl.*", "tl.{{splitfromleft(1,4)}}", "sl.12345", "tl.1234.5"),
    ("sr.*", "tr.{{splitfromright(1,4)}}", "sr.1234567", "tr.123.4567"),
    ("sr.*", "tr.{{splitfromright(1,4)}}", "sr.12", "tr.12"),
    ("sr.*", "tr.{{splitfromright(1,4)}}", "sr.1234", "tr.1234"),
    ("sr.*", "tr.{{splitfromright(1,4)}}", "sr.12345", "tr.1.2345"),
    ("cl.*", "ul.{{slicefromleft(1,2)}}", "cl.1234567", "ul.12.34.56.7"),
    ("cl.*", "ul.{{slicefromleft(1,2)}}", "cl.1", "ul.1"),
    ("cl.*", "ul.{{slicefromleft(1,2)}}", "cl.12", "ul.12"),
    ("cl.*", "ul.{{slicefromleft(1,2)}}", "cl.123", "ul.12.3"),
    ("cr.*", "ur.{{slicefromright(1,2)}}", "cr.1234567", "ur.1.23.45.67"),
    ("cr.*", "ur.{{slicefromright(1,2)}}", "cr.1", "ur.1"),
    ("cr.*", "ur.{{slicefromright(1,2)}}", "cr.12", "ur.12"),
    ("cr.*", "ur.{{slicefromright(1,2)}}", "cr.123", "ur.1.23"),
    ("ci.*", "di.{{ SplitFromLeft( 1 , 2 ) }}", "ci.abcd", "di.ab.cd"),
    ("cw.*", "dw.{{Wildcard(1)}}", "cw.abcd", "dw.abcd"),
    ("lf.*", "mf.{{left(1,3)}}", "lf.abcdef", "mf.abc"),
    ("lf.*", "mf.{{left(1,3)}}", "lf.ab", "mf.ab"),
    ("rt.*", "mt.{{right(1,3)}}", "rt.abcdef", "mt.def"),
    ("rt.*", "mt.{{right(1,3)}}", "rt.ab", "mt.ab"),
    ("m1.*.*", "n1.$2", "m1.a.b", "n1.b"),
    // Edge cases.
    ("e1.*", "f1.$0", "e1.x", "f1.e1"),
    ("z.*.*", "y.$0", "z.q.r", "y.z"),
    ("e2.*", "f2.{{wildcard(1)}}x", "e2.x", "f2.{{wildcard(1)}}x"),
    ("e3.*", "f3.{{partition(0,1)}}", "e3.x", "f3.0"),
    ("e4.*", "f4.{{splitfromleft(1,0)}}", "e4.abc", "f4.abc"),
    ("e5.*", "f5.{{slicefromleft(1,0)}}", "e5.abc", "f5.abc"),
    ("e6.*", "f6.{{left(1,-1)}}", "e6.abc", "f6.abc"),
    ("e7.*", "f7.{{left(1,0)}}", "e7.abc", "f7.abc"),
    ("e8.*", "f8.{{random(0)}}", "e8.abc", "f8.0"),
    ("e9.*", "f9.{{split(1,)}}", "e9.a-b", "f9.a.-.b"),
    ("ea.*", "fa.{{split(1,.)}}", "ea.abc", "fa.{{split(1,.)}}"),
    ("eb.*", "fb.{{splitfromright(1,0)}}", "eb.abc", "fb.abc"),
    ("ec.*", "fc.{{slicefromright(1,0)}}", "ec.abc", "fc.abc"),
    ("ed.*", "fd.{{right(1,0)}}", "ed.abc", "fd.abc"),
    ("ee.*", "fe.{{right(1,-2)}}", "ee.abc", "fe.abc"),
    ("ef.*", "ff.{{splitfromleft(1,-1)}}", "ef.abc", "ff.abc"),
    ("eg.*", "fg.{{splitfromleft(1,3)}}", "eg.abc", "fg.abc"),
    ("eh.*", "fh.{{splitfromright(1,3)}}", "eh.abc", "fh.abc"),
    ("ei.*", "fi.{{ wildcard(1) }}", "ei.abc", "fi.abc"),
    ("ej.*.*", "fj.{{partition(4,1,1)}}", "ej.a.b", "fj.3"),
    ("ek.*", "ek.{{wildcard(1)}}.x", "ek.a", "ek.a.x"),
    ("el.*", "fl.{{slicefromleft(1,5)}}", "el.abc", "fl.abc"),
    ("en.*", "fn.{{partition(1,1)}}", "en.-", "fn.0"),
    ("eo.*", "{{wildcard(1)}}", "eo.-", "-"),
    ("ep", "[wx]", "ep", "[wx]"),
    ("g1.*", "h1.{{wildcard(0)}}", "g1.x", "h1.g1"),
    ("g2.*", "h2.{{wildcard(-1)}}", "g2.x", "h2.g2"),
    ("g3.*", "h3.$x", "g3.x", "h3.$x"),
    ("g4.*", "h4.$", "g4.x", "h4.$"),
    ("g5.*", "h5.$1x", "g5.x", "h5.$1x"),
    ("g6", "h6.{{partition(3,1)}}", "g6", "h6.1"),
    ("g7.*", "h7.{{}}", "g7.x", "h7.{{}}"),
    ("g8.*", "h8.{{ wildcard (1) }}", "g8.x", "h8.x"),
    ("g9.*", "h9.{{wildcard(1 )}}", "g9.x", "h9.x"),
    ("ga.*", "ha.{{random(-1)}}", "ga.x", "ha.0"),
    ("gb.*", "hb.{{partition(-1,1)}}", "gb.x", "hb.4245442695"),
    ("gc.*", "hc.{{partition(3,0)}}", "gc.x", "hc.2"),
    ("gc.*", "hc.{{partition(3,0)}}", "gc.y", "hc.2"),
    ("gd.*", "hd.{{split(0,-)}}", "gd.a-b", "hd.gd"),
    ("ge.*", "he.{{splitfromleft(0,1)}}", "ge.abc", "he.g.e"),
    ("gf.*", "hf.{{left(0,1)}}", "gf.abc", "hf.g"),
    ("gh.*", "hh.$01", "gh.x", "hh.x"),
    ("gi.*.*", "hi.{{wildcard(1)}}.{{wildcard(1)}}", "gi.x.y", "hi.x.x"),
    ("gj.*", "hj.{{wildcard( 1)}}", "gj.x", "hj.x"),
    ("gk.*", "hk.{{partition(3, 1)}}", "gk.customerid2", "hk.2"),
    ("gl.*", "hl.{{ partition(3,1) }}", "gl.customerid2", "hl.2"),
    ("x.*", "y.{{slicefromLeft(1,2)}}", "x.abc", "y.ab.c"),
    ("x.*", "y.{{Left(1,2)}}", "x.abc", "y.ab"),
    ("x.*", "y.{{wildcard(+1)}}", "x.abc", "y.abc"),
];

#[test]
fn every_function_gives_nats_servers_result() {
    for (src, dest, subject, want) in RESULTS {
        assert_eq!(
            map(src, dest, subject),
            *want,
            "{src} -> {dest} on {subject}"
        );
    }
}

#[test]
fn a_split_that_leaves_nothing_gives_an_invalid_subject() {
    // nats-server delivers nothing for it; the router drops it.
    assert_eq!(map("em.*", "fm.{{split(1,-)}}.z", "em.-"), "fm..z");
}

#[test]
fn a_transform_applies_only_where_its_source_matches() {
    let t = SubjectTransform::new("a.*", "b.$1").expect("valid");
    assert_eq!(t.apply_det("a.b.c"), None);
    assert_eq!(t.apply_det("c.d"), None);
    let all = SubjectTransform::new("", "").expect("empty is > to itself");
    assert_eq!(all.apply_det("x.y"), Some("x.y".to_owned()));
    let filter = SubjectTransform::new("a.>", "").expect("filter only");
    assert_eq!(filter.apply_det("a.b"), Some("a.b".to_owned()));
}

#[test]
fn random_picks_below_n() {
    let t = SubjectTransform::new("rn.*", "rm.{{random(4)}}").expect("valid");
    let mut next = 0;
    let mut rand = |n: u32| {
        next += 1;
        next % n
    };
    let got: Vec<String> = (0..4).filter_map(|_| t.apply("rn.x", &mut rand)).collect();
    assert_eq!(got, ["rm.1", "rm.2", "rm.3", "rm.0"]);
}

#[rustfmt::skip]
const ERRORS: &[(&str, &str, &str)] = &[
    ("foo", "bar.$1", "invalid mapping destination: wildcard index out of range in $1"),
    ("foo.*", "bar.$2", "invalid mapping destination: wildcard index out of range in $2: [2]"),
    ("foo.*", "bar.{{unknown(1)}}", "invalid mapping destination: unknown function in {{unknown(1)}}"),
    ("foo.>", "bar", "invalid subject"),
    ("foo", "bar.>", "invalid subject"),
    ("foo.*", "bar.*", "invalid subject"),
    ("foo.*", "bar.{{partition(3,2)}}", "invalid mapping destination: wildcard index out of range in {{partition(3,2)}}: [2]"),
    ("foo.*", "{{split(1)}}", "invalid mapping destination: not enough arguments passed to the function in {{split(1)}}"),
    ("foo.*", "{{wildcard()}}", "invalid mapping destination: not enough arguments passed to the function in {{wildcard()}}"),
    ("foo.*", "{{wildcard(1,2)}}", "invalid mapping destination: too many arguments passed to the function in {{wildcard(1,2)}}"),
    ("foo.*", "{{random()}}", "invalid mapping destination: function argument is invalid or in the wrong format in {{random()}}"),
    ("foo.*", "{{random(1,2)}}", "invalid mapping destination: not enough arguments passed to the function in {{random(1,2)}}"),
    ("foo.*", "bar..x", "invalid mapping destination: invalid transform"),
    ("foo.*", "{{wildcard(1)}} ", "invalid mapping destination: invalid transform"),
    ("foo.*", "a b", "invalid mapping destination: invalid transform"),
    ("foo.*", "{{wildcard(1)}}{{wildcard(1)}}", "invalid mapping destination: function argument is invalid or in the wrong format in {{wildcard(1)}}{{wildcard(1)}}"),
    ("foo.*.>", "bar.>.$1", "invalid mapping destination: invalid transform in $1"),
    ("foo.>", "bar.>.>", "invalid mapping destination: invalid transform in >"),
    ("foo.*", "{{wildcard(a)}}", "invalid mapping destination: function argument is invalid or in the wrong format in {{wildcard(a)}}"),
    ("foo.*", "{{splitfromleft(1)}}", "invalid mapping destination: not enough arguments passed to the function in {{splitfromleft(1)}}"),
    ("foo.*", "{{splitfromleft(1,2,3)}}", "invalid mapping destination: too many arguments passed to the function in {{splitfromleft(1,2,3)}}"),
    ("foo.*", "{{partition()}}", "invalid mapping destination: function argument is invalid or in the wrong format in {{partition()}}"),
    ("foo.*", "{{partition(3,a)}}", "invalid mapping destination: function argument is invalid or in the wrong format in {{partition(3,a)}}"),
    ("foo.*", "{{partition(4294967296,1)}}", "invalid mapping destination: function argument is invalid or in the wrong format in {{partition(4294967296,1)}}"),
    ("foo.*", "{{left(1)}}", "invalid mapping destination: not enough arguments passed to the function in {{left(1)}}"),
    ("foo.*", "{{split(1,-,x)}}", "invalid mapping destination: too many arguments passed to the function in {{split(1,-,x)}}"),
    ("foo.*", "{{split(1,- )}}", "invalid mapping destination: function argument is invalid or in the wrong format in {{split(1,- )}}"),
    ("foo", "{{split(1,-)}}", "invalid mapping destination: wildcard index out of range in {{split(1,-)}}"),
    ("foo.*", "{{splitfromleft(2,2)}}", "invalid mapping destination: wildcard index out of range in {{splitfromleft(2,2)}}: [2]"),
    ("foo.*", "{{SPLIT(1,-)}}", "invalid mapping destination: unknown function in {{SPLIT(1,-)}}"),
    ("foo.*", "{{sPlitfromleft(1,2)}}", "invalid mapping destination: unknown function in {{sPlitfromleft(1,2)}}"),
    ("foo.*", "{{PARTITION(3,1)}}", "invalid mapping destination: unknown function in {{PARTITION(3,1)}}"),
    ("foo.*", "{{foo}}", "invalid mapping destination: unknown function in {{foo}}"),
    ("foo.*", "{{wildcard}}", "invalid mapping destination: unknown function in {{wildcard}}"),
    ("foo.*", "{{wildcard(1)x}}", "invalid mapping destination: unknown function in {{wildcard(1)x}}"),
];

#[test]
fn invalid_mappings_get_nats_servers_errors() {
    for (src, dest, want) in ERRORS {
        let got = SubjectTransform::new(src, dest).map(|t| format!("{t:?}"));
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Err((*want).to_owned()),
            "{src} -> {dest}"
        );
    }
}

#[test]
fn mappings_nats_server_accepts_are_accepted() {
    for (src, dest) in [
        ("foo.*.*", "bar.$1"),
        ("foo", "{{partition(3)}}"),
        ("foo", "{{random(3)}}"),
        ("foo.*", "{{split(1,()}}"),
        ("*", "{{split(1,-)}}"),
        ("foo.*", "{{left(1 ,2)}}"),
    ] {
        assert!(SubjectTransform::new(src, dest).is_ok(), "{src} -> {dest}");
    }
}

fn weighted(src: &str, dests: &[(&str, u8, Option<&str>)]) -> Result<Mapping, WeightError> {
    let dests: Vec<(String, u8, Option<String>)> = dests
        .iter()
        .map(|(d, w, c)| ((*d).to_owned(), *w, c.map(str::to_owned)))
        .collect();
    Mapping::new(src, &dests)
}

#[test]
fn weighted_destinations_split_by_draw_and_keep_the_remainder() {
    let m = weighted("w", &[("w.a", 50, None), ("w.b", 30, None)]).expect("valid");
    let pick = |draw: u32| m.select("w", None, &mut |_| draw);
    assert_eq!(pick(0).as_deref(), Some("w.a"));
    assert_eq!(pick(49).as_deref(), Some("w.a"));
    assert_eq!(pick(50).as_deref(), Some("w.b"));
    assert_eq!(pick(79).as_deref(), Some("w.b"));
    assert_eq!(pick(80), None);
    assert_eq!(m.select("other", None, &mut |_| 0), None);
}

#[test]
fn cluster_scoped_destinations_apply_only_in_their_cluster() {
    let m = weighted(
        "cs",
        &[
            ("cs.east", 100, Some("east")),
            ("cs.west", 100, Some("west")),
        ],
    )
    .expect("valid: each scope adds up to 100");
    assert_eq!(
        m.select("cs", Some("west"), &mut |_| 0).as_deref(),
        Some("cs.west")
    );
    assert_eq!(m.select("cs", None, &mut |_| 0), None);
    let mixed =
        weighted("m", &[("m.all", 100, None), ("m.east", 100, Some("east"))]).expect("valid");
    assert_eq!(
        mixed.select("m", Some("east"), &mut |_| 0).as_deref(),
        Some("m.east")
    );
    assert_eq!(
        mixed.select("m", Some("west"), &mut |_| 0).as_deref(),
        Some("m.all")
    );
}

#[test]
fn weighted_mapping_errors_are_nats_servers() {
    let over = weighted("foo", &[("a", 60, None), ("b", 50, None)]).map(|_| ());
    assert_eq!(
        over.map_err(|e| e.to_string()),
        Err("Error adding mapping for \"foo\" : total weight needs to be <= 100".to_owned())
    );
    let dup = weighted("foo", &[("a", 50, None), ("a", 10, None)]).map(|_| ());
    assert_eq!(
        dup.map_err(|e| e.to_string()),
        Err("Error adding mapping for \"foo\" : duplicate entry for \"a\"".to_owned())
    );
    let bad = weighted("foo.*", &[("bar.$2", 100, None)]).map(|_| ());
    assert_eq!(
        bad.map_err(|e| e.to_string()),
        Err("Error adding mapping for \"foo.*\" to \"bar.$2\" : invalid mapping destination: wildcard index out of range in $2: [2]".to_owned())
    );
}

fn token() -> impl Strategy<Value = String> {
    "[a-z0-9-]{1,8}"
}

proptest! {
    #[test]
    fn reordering_wildcards_twice_gives_the_subject_back(a in token(), b in token(), c in token()) {
        let there = SubjectTransform::new("x.*.*.*", "y.$3.$1.$2").expect("valid");
        let back = SubjectTransform::new("y.*.*.*", "x.$2.$3.$1").expect("valid");
        let subject = format!("x.{a}.{b}.{c}");
        let mapped = there.apply_det(&subject).expect("matches");
        prop_assert_eq!(back.apply_det(&mapped), Some(subject));
    }

    #[test]
    fn partitions_are_stable_and_in_range(key in token(), n in 1u32..64) {
        let t = SubjectTransform::new("k.*", &format!("k.{{{{partition({n},1)}}}}.$1")).expect("valid");
        let out = t.apply_det(&format!("k.{key}")).expect("matches");
        let part: u32 = out.split('.').nth(1).and_then(|p| p.parse().ok()).expect("number");
        prop_assert!(part < n);
        prop_assert_eq!(part, fnv1a32([key.as_bytes()]) % n);
    }

    #[test]
    fn split_and_slice_keep_every_character(key in "[a-z0-9-]{1,20}", n in -2i64..24) {
        for f in ["splitfromleft", "splitfromright", "slicefromleft", "slicefromright"] {
            let t = SubjectTransform::new("k.*", &format!("{{{{{f}(1,{n})}}}}")).expect("valid");
            let out = t.apply_det(&format!("k.{key}")).expect("matches");
            prop_assert_eq!(out.replace('.', ""), key.clone());
        }
    }

    #[test]
    fn any_destination_text_is_refused_or_applied_without_panicking(
        dest in "[a-z${}(),.0-9 >*-]{1,30}",
        subject in "[a-z0-9]{1,4}(\\.[a-z0-9]{1,4}){0,3}",
    ) {
        if let Ok(t) = SubjectTransform::new("*.>", &dest) {
            let _ = t.apply_det(&subject);
        }
        if let Ok(t) = SubjectTransform::new("*.*", &dest) {
            let _ = t.apply_det(&subject);
        }
    }
}
