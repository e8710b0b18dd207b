use std::fmt::Write as _;

use super::*;

/// Renders a tree as `key @line:col = type value`, one entry per line, for snapshots.
fn render(map: &ConfMap) -> String {
    let mut out = String::new();
    render_map(map, 0, &mut out);
    out
}

fn render_map(map: &ConfMap, depth: usize, out: &mut String) {
    for e in map.entries() {
        let var = if e.used_as_variable {
            " (variable)"
        } else {
            ""
        };
        let _ = write!(
            out,
            "{}{} @{}:{}{var} = ",
            "  ".repeat(depth),
            e.key,
            e.key_pos.line,
            e.key_pos.col
        );
        render_value(&e.value, depth, out);
    }
}

fn render_value(v: &ConfValue, depth: usize, out: &mut String) {
    let at = format!("@{}:{}", v.pos.line, v.pos.col);
    match &v.kind {
        ValueKind::Map(m) => {
            let _ = writeln!(out, "map {at} {{");
            render_map(m, depth + 1, out);
            let _ = writeln!(out, "{}}}", "  ".repeat(depth));
        }
        ValueKind::Array(items) => {
            let _ = writeln!(out, "array {at} [");
            for item in items {
                out.push_str(&"  ".repeat(depth + 1));
                render_value(item, depth + 1, out);
            }
            let _ = writeln!(out, "{}]", "  ".repeat(depth));
        }
        ValueKind::String(s) => {
            let _ = writeln!(out, "string {s:?} {at}");
        }
        ValueKind::Int(n) => {
            let _ = writeln!(out, "int {n} {at}");
        }
        ValueKind::Float(f) => {
            let _ = writeln!(out, "float {f} {at}");
        }
        ValueKind::Bool(b) => {
            let _ = writeln!(out, "bool {b} {at}");
        }
        ValueKind::Datetime(d) => {
            let _ = writeln!(out, "datetime {d} {at}");
        }
    }
}

fn tree(text: &str) -> String {
    match parse_str(text) {
        Ok(m) => render(&m),
        Err(e) => panic!("parse failed: {e}\n{text}"),
    }
}

fn err(text: &str) -> String {
    match parse_str(text) {
        Ok(m) => panic!("expected an error, parsed:\n{}", render(&m)),
        Err(e) => e.to_string(),
    }
}

fn scalar(text: &str) -> ValueKind {
    let m = parse_str(&format!("v: {text}")).unwrap_or_else(|e| panic!("{text}: {e}"));
    m.get("v")
        .map(|v| v.kind.clone())
        .unwrap_or_else(|| panic!("{text}: no value"))
}

#[test]
fn separators_and_comments() {
    insta::assert_snapshot!(tree(
        "# comment\nport: 4222\nhost = 127.0.0.1 // trailing\nserver_name rill-1; debug: true, trace: false\n\n  logtime  :  off # c\n"
    ));
}

#[test]
fn blocks_with_and_without_colon() {
    insta::assert_snapshot!(tree(
        "jetstream {\n  store_dir: \"/tmp/js\"\n}\nauthorization: {\n  user: a\n  password: 'b c'\n}\ntls\n{\n  verify: yes\n}\nempty {}\n"
    ));
}

#[test]
fn arrays_with_and_without_commas() {
    insta::assert_snapshot!(tree(
        "a: [1, 2, 3]\nb [\n  \"x\"\n  'y'  # comment\n  z,\n]\nc: []\nusers = [\n  {user: a, password: b}\n  {user: c, password: d}\n]\n"
    ));
}

#[test]
fn strings_quoted_bare_and_block() {
    insta::assert_snapshot!(tree(
        "dq: \"a\\tb\\n\\\"q\\\" \\x41 \\\\\"\nsq: 'no \\t escape'\nbare: hello-world.example:80\nip: 127.0.0.1:4222\nhash: $2a$11$abcdefghijklmnopqrstuv\nblock: (\nline one\n  line ) two\n)\ndur: 10s\nms: 300ms\n"
    ));
}

#[test]
fn json_form() {
    insta::assert_snapshot!(tree(
        "{\n  \"port\": 4567,\n  \"jetstream\": {\"max_mem\": 1024, \"store_dir\": \"/x\"},\n  \"tags\": [\"a\", \"b\"]\n}\n"
    ));
}

#[test]
fn variables_resolve_from_outer_scopes_and_mark_definitions() {
    insta::assert_snapshot!(tree(
        "PORT: 4333\nPERMS = { publish: \"a.>\" }\nport: $PORT\nauthorization {\n  INNER: secret\n  token: $INNER\n  permissions: $PERMS\n}\n"
    ));
}

#[test]
fn environment_variables_are_parsed_as_values() {
    // The tests cannot set variables (unsafe_code is forbidden), so HOME stands in for
    // the lookup and `env_value` is checked directly for the typing.
    let home = std::env::var("HOME").expect("HOME is set");
    let m = parse_str("dir: $HOME\n").expect("parses");
    assert_eq!(
        m.get("dir").map(|v| v.kind.clone()),
        Some(ValueKind::String(home))
    );
    let mut stack = Vec::new();
    let v = parser::env_value("4555", "P", &Pos::default(), &mut stack).expect("parses");
    assert_eq!(v.kind, ValueKind::Int(4555));
    let v = parser::env_value("a b", "P", &Pos::default(), &mut stack).expect("parses");
    assert_eq!(v.kind, ValueKind::String("a b".into()));
}

#[test]
fn sizes() {
    let table: &[(&str, i64)] = &[
        ("1K", 1000),
        ("1k", 1000),
        ("1KB", 1024),
        ("1kb", 1024),
        ("1Ki", 1024),
        ("1KiB", 1024),
        ("128KB", 128 * 1024),
        ("1M", 1_000_000),
        ("1MB", 1 << 20),
        ("64MiB", 64 << 20),
        ("64mib", 64 << 20),
        ("1G", 1_000_000_000),
        ("1GB", 1 << 30),
        ("10GiB", 10 << 30),
        ("1T", 1_000_000_000_000),
        ("1TB", 1 << 40),
        ("2P", 2_000_000_000_000_000),
        ("1EB", 1 << 60),
        ("-1", -1),
        ("-2K", -2000),
        ("0", 0),
    ];
    for (text, want) in table {
        assert_eq!(scalar(text), ValueKind::Int(*want), "{text}");
    }
}

#[test]
fn numbers_strings_and_booleans() {
    let table: &[(&str, ValueKind)] = &[
        ("0.5", ValueKind::Float(0.5)),
        ("-2.25", ValueKind::Float(-2.25)),
        ("true", ValueKind::Bool(true)),
        ("TRUE", ValueKind::Bool(true)),
        ("yes", ValueKind::Bool(true)),
        ("On", ValueKind::Bool(true)),
        ("false", ValueKind::Bool(false)),
        ("no", ValueKind::Bool(false)),
        ("off", ValueKind::Bool(false)),
        ("\"true\"", ValueKind::String("true".into())),
        ("10s", ValueKind::String("10s".into())),
        ("2h30m", ValueKind::String("2h30m".into())),
        ("4222abc", ValueKind::String("4222abc".into())),
        ("1KBx", ValueKind::String("1KBx".into())),
        (
            "2020-01-02T03:04:05Z",
            ValueKind::Datetime("2020-01-02T03:04:05Z".into()),
        ),
        ("enabled", ValueKind::String("enabled".into())),
    ];
    for (text, want) in table {
        assert_eq!(&scalar(text), want, "{text}");
    }
}

#[test]
fn later_keys_replace_earlier_ones() {
    let m = parse_str("port: 1\nport: 2\n").expect("parses");
    assert_eq!(m.len(), 1);
    assert_eq!(
        m.get("port").map(|v| v.kind.clone()),
        Some(ValueKind::Int(2))
    );
}

#[test]
fn errors_carry_positions() {
    let cases = [
        "port: 4222\nfoo {\n  bar: [1, 2\n}\n",
        "port: $NOPE_RILL_UNDEFINED\n",
        "server_name: abc def\n",
        "max_payload: 1.5MB\n",
        "a: \"unterminated\n",
        "a: {\n  b: 1\n",
        "a: 1\n}\n",
        "key:\nvalue\n",
        "a: \"bad \\q escape\"\n",
        "when: 2020-01-02\n",
        "a: [1,,2]\n",
        ": 5\n",
        "n: -abc\n",
    ];
    let rendered: Vec<String> = cases
        .iter()
        .map(|c| format!("{c:?}\n  => {}", err(c)))
        .collect();
    insta::assert_snapshot!(rendered.join("\n"));
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("a: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(err(&deep).contains("nested deeper"));
}

mod files {
    use std::fs;

    use super::*;

    #[test]
    fn include_is_relative_to_the_including_file_and_merges_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("sub/auth.conf"), "user: a\npassword: b\n").expect("write");
        fs::write(
            dir.path().join("sub/js.conf"),
            "jetstream { max_mem: 1G }\n",
        )
        .expect("write");
        fs::write(
            dir.path().join("main.conf"),
            "port: 4222\ninclude 'sub/js.conf'\nauthorization {\n  include \"sub/auth.conf\"\n}\n",
        )
        .expect("write");
        let m = parse_file(&dir.path().join("main.conf")).expect("parses");
        insta::assert_snapshot!(render(&m));
    }

    #[test]
    fn include_errors_name_the_include_and_the_inner_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("bad.conf"), "a: 1\nb: [\n").expect("write");
        fs::write(dir.path().join("main.conf"), "include bad.conf\n").expect("write");
        let e = parse_file(&dir.path().join("main.conf")).expect_err("fails");
        let text = e
            .to_string()
            .replace(&dir.path().display().to_string(), "DIR");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn include_cycles_stop() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a.conf"), "include b.conf\n").expect("write");
        fs::write(dir.path().join("b.conf"), "include a.conf\n").expect("write");
        let e = parse_file(&dir.path().join("a.conf")).expect_err("fails");
        assert!(e.to_string().contains("nested deeper"), "{e}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let e = parse_file(std::path::Path::new("/nonexistent/rill.conf")).expect_err("fails");
        assert!(e.message.contains("/nonexistent/rill.conf"), "{e}");
    }
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any text made of the language's special characters parses or fails cleanly.
        #[test]
        fn parser_never_panics(text in "[a-z0-9 \t\r\n{}\\[\\]:=,;#/\"'()$.\\\\xKMGBi-]{0,80}") {
            let _ = parse_str(&text);
        }

        /// Keys and values of any content round-trip through a quoted string.
        #[test]
        fn quoted_values_are_kept(value in "[^\"\\\\\n]{0,20}") {
            let m = parse_str(&format!("k: \"{value}\"")).expect("parses");
            prop_assert_eq!(m.get("k").map(|v| v.kind.clone()), Some(ValueKind::String(value)));
        }
    }
}
