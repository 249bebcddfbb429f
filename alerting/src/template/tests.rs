//! End-to-end tests: parse and execute texts, compare with what Go/Prometheus print.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{FixedOffset, TimeZone};

use super::*;

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn list(items: &[Value]) -> Value {
    Value::List(items.to_vec())
}

fn render_with(text: &str, data: &Value, funcs: &Funcs) -> Result<String, TemplateError> {
    Template::parse("t", text, funcs)?.execute(data)
}

fn render(text: &str, data: &Value) -> String {
    let funcs = prometheus_funcs(PrometheusFuncsConfig::default());
    render_with(text, data, &funcs).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn render_err(text: &str, data: &Value) -> String {
    let funcs = prometheus_funcs(PrometheusFuncsConfig::default());
    match render_with(text, data, &funcs) {
        Ok(out) => panic!("{text:?} rendered {out:?}, expected an error"),
        Err(e) => e.to_string(),
    }
}

fn funcs_with_args() -> Funcs {
    prometheus_funcs(PrometheusFuncsConfig::default())
}

fn sample_data() -> Value {
    map(&[
        ("Name", "world".into()),
        ("Count", Value::Int(3)),
        ("Ratio", Value::Float(0.25)),
        ("Empty", "".into()),
        (
            "Labels",
            Value::string_map([("job", "api"), ("instance", "host:9090"), ("env", "prod")]),
        ),
        ("Items", list(&["a".into(), "b".into(), "c".into()])),
        ("Nested", map(&[("Inner", map(&[("Deep", "yes".into())]))])),
    ])
}

#[test]
fn text_and_actions() {
    let d = sample_data();
    assert_eq!(render("hello {{ .Name }}!", &d), "hello world!");
    assert_eq!(render("plain text only", &d), "plain text only");
    assert_eq!(render("{{.Count}} {{.Ratio}}", &d), "3 0.25");
    assert_eq!(render("{{ . }}", &"dot".into()), "dot");
    assert_eq!(render("{{ .Items }}", &d), "[a b c]");
    assert_eq!(
        render("{{ .Labels }}", &d),
        "map[env:prod instance:host:9090 job:api]"
    );
}

#[test]
fn trim_markers_and_comments() {
    let d = sample_data();
    assert_eq!(render("a  {{- .Name -}}  \n b", &d), "aworldb");
    assert_eq!(render("a {{- .Name }} b", &d), "aworld b");
    assert_eq!(render("a {{ .Name -}} \n\t b", &d), "a worldb");
    assert_eq!(render("x{{/* a comment */}}y", &d), "xy");
    assert_eq!(render("x  {{- /* trimmed */ -}}  y", &d), "xy");
    // `{{-3}}` is the number -3, not a trim marker.
    assert_eq!(render("{{-3}}", &d), "-3");
    assert_eq!(
        render("{{ range .Items -}}\n  {{ . }}\n{{- end }}", &d),
        "abc"
    );
}

#[test]
fn fields_maps_and_missing_keys() {
    let d = sample_data();
    assert_eq!(render("{{ .Labels.job }}", &d), "api");
    assert_eq!(render("{{ .Nested.Inner.Deep }}", &d), "yes");
    assert_eq!(render("{{ .Missing }}", &d), "<no value>");
    // Lookups through a missing entry stay missing.
    assert_eq!(render("{{ .Missing.Deeper }}", &d), "<no value>");
    assert_eq!(render("{{ print .Missing }}", &d), "<nil>");
    assert_eq!(render("{{ $.Labels.env }}", &d), "prod");
    let t = Template::parse("t", "{{ .Labels.nope }}", &Funcs::builtins())
        .unwrap()
        .with_missing_key(MissingKey::Zero);
    assert_eq!(t.execute(&d).unwrap(), "");
    let t = Template::parse("t", "{{ .Labels.nope }}", &Funcs::builtins())
        .unwrap()
        .with_missing_key(MissingKey::Error);
    assert_eq!(
        t.execute(&d).unwrap_err().to_string(),
        r#"template: t:1:3: executing "t" at <.Labels.nope>: map has no entry for key "nope""#
    );
}

#[test]
fn variables() {
    let d = sample_data();
    assert_eq!(render("{{ $x := .Name }}{{ $x }}", &d), "world");
    assert_eq!(render("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", &d), "2");
    assert_eq!(render("{{ $l := .Labels }}{{ $l.job }}", &d), "api");
    assert_eq!(render("{{ $n := .Nested }}{{ $n.Inner.Deep }}", &d), "yes");
    assert_eq!(
        render("{{ with .Labels }}{{ $.Name }}{{ end }}", &d),
        "world"
    );
    // Assignment inside a range updates the outer variable, as since Go 1.11.
    assert_eq!(
        render(
            "{{ $last := \"\" }}{{ range .Items }}{{ $last = . }}{{ end }}{{ $last }}",
            &d
        ),
        "c"
    );
    // Declarations inside a control structure end with it.
    assert!(
        render_err("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}", &d)
            .contains("undefined variable \"$y\"")
    );
}

#[test]
fn pipelines_and_parentheses() {
    let d = sample_data();
    assert_eq!(render("{{ .Name | printf \"%s!\" }}", &d), "world!");
    assert_eq!(
        render("{{ .Name | toUpper | printf \"<%s>\" }}", &d),
        "<WORLD>"
    );
    assert_eq!(
        render("{{ printf \"%d-%s\" (len .Items) (index .Items 1) }}", &d),
        "3-b"
    );
    assert_eq!(render("{{ (index .Nested \"Inner\").Deep }}", &d), "yes");
    assert_eq!(render("{{ .Items | len }}", &d), "3");
}

#[test]
fn if_else_chains() {
    let d = sample_data();
    let t = "{{ if eq .Count 1 }}one{{ else if eq .Count 3 }}three{{ else }}other{{ end }}";
    assert_eq!(render(t, &d), "three");
    assert_eq!(render("{{ if .Empty }}yes{{ else }}no{{ end }}", &d), "no");
    assert_eq!(render("{{ if .Missing }}yes{{ end }}", &d), "");
    assert_eq!(render("{{ if and .Name .Count }}both{{ end }}", &d), "both");
    assert_eq!(
        render("{{ if not .Items }}empty{{ else }}full{{ end }}", &d),
        "full"
    );
}

#[test]
fn range_lists_maps_and_else() {
    let d = sample_data();
    assert_eq!(
        render("{{ range .Items }}[{{ . }}]{{ end }}", &d),
        "[a][b][c]"
    );
    assert_eq!(
        render(
            "{{ range $i, $v := .Items }}{{ $i }}={{ $v }} {{ end }}",
            &d
        ),
        "0=a 1=b 2=c "
    );
    assert_eq!(
        render("{{ range $v := .Items }}{{ $v }}{{ end }}", &d),
        "abc"
    );
    // Maps iterate in sorted key order.
    assert_eq!(
        render(
            "{{ range $k, $v := .Labels }}{{ $k }}={{ $v }};{{ end }}",
            &d
        ),
        "env=prod;instance=host:9090;job=api;"
    );
    assert_eq!(
        render("{{ range .Labels }}{{ . }},{{ end }}", &d),
        "prod,host:9090,api,"
    );
    assert_eq!(
        render("{{ range .Missing }}x{{ else }}none{{ end }}", &d),
        "none"
    );
    assert_eq!(
        render(
            "{{ range .Empty2 }}x{{ else }}none{{ end }}",
            &map(&[("Empty2", list(&[]))])
        ),
        "none"
    );
    assert_eq!(
        render(
            "{{ range .Items }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ . }}{{ end }}",
            &d
        ),
        "ac"
    );
    assert_eq!(
        render(
            "{{ range .Items }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}",
            &d
        ),
        "a"
    );
    assert_eq!(render("{{ range 3 }}{{ . }}{{ end }}", &d), "012");
    assert!(
        render_err("{{ range .Name }}{{ end }}", &d).contains("range can't iterate over world")
    );
}

#[test]
fn with_else_chains() {
    let d = sample_data();
    assert_eq!(
        render("{{ with .Nested.Inner }}{{ .Deep }}{{ end }}", &d),
        "yes"
    );
    assert_eq!(
        render("{{ with .Missing }}x{{ else }}fallback{{ end }}", &d),
        "fallback"
    );
    assert_eq!(
        render(
            "{{ with .Missing }}a{{ else with .Name }}{{ . }}{{ else }}c{{ end }}",
            &d
        ),
        "world"
    );
    assert_eq!(render("{{ with $x := .Count }}{{ $x }}{{ end }}", &d), "3");
}

#[test]
fn define_template_and_block() {
    let d = sample_data();
    let t = r#"{{ define "greet" }}Hi {{ . }}{{ end }}{{ template "greet" .Name }}, {{ template "greet" "you" }}"#;
    assert_eq!(render(t, &d), "Hi world, Hi you");
    assert_eq!(
        render(r#"{{ block "b" .Count }}[{{ . }}]{{ end }}"#, &d),
        "[3]"
    );
    let t = Template::parse(
        "set",
        r#"{{ define "a" }}A{{ template "b" . }}{{ end }}{{ define "b" }}B{{ .Name }}{{ end }}"#,
        &Funcs::builtins(),
    )
    .unwrap();
    assert_eq!(t.execute_template("a", &d).unwrap(), "ABworld");
    assert_eq!(t.execute(&d).unwrap(), "");
    assert_eq!(t.template_names(), vec!["a", "b", "set"]);
    assert_eq!(
        t.execute_template("zzz", &d).unwrap_err().to_string(),
        r#"template: no template "zzz" associated with template "set""#
    );
    let err = render_err(r#"{{ template "nope" }}"#, &d);
    assert_eq!(
        err,
        r#"template: t:1:3: executing "t" at <{{template "nope"}}>: template "nope" not defined"#
    );
    assert!(
        Template::parse(
            "t",
            r#"{{define "x"}}1{{end}}{{define "x"}}2{{end}}"#,
            &Funcs::builtins()
        )
        .unwrap_err()
        .to_string()
        .contains("multiple definition of template \"x\"")
    );
}

#[test]
fn literals() {
    let d = Value::Nil;
    assert_eq!(
        render(r#"{{ "a\tb\n\"c\"\x41\u00e9" }}"#, &d),
        "a\tb\n\"c\"Aé"
    );
    assert_eq!(render("{{ `raw \\n {{` }}", &d), "raw \\n {{");
    assert_eq!(
        render("{{ 42 }} {{ -7 }} {{ 0x1F }} {{ 1_000 }}", &d),
        "42 -7 31 1000"
    );
    assert_eq!(render("{{ 1.5 }} {{ 1e3 }} {{ 2.0 }}", &d), "1.5 1000 2");
    assert_eq!(render("{{ true }} {{ false }}", &d), "true false");
    assert_eq!(render("{{ 'a' }}", &d), "97");
    assert_eq!(render("{{ print nil }}", &d), "<nil>");
    assert!(render_err("{{ nil }}", &d).contains("nil is not a command"));
}

#[test]
fn and_or_short_circuit_and_return_deciding_value() {
    let d = sample_data();
    assert_eq!(render("{{ or .Missing \"default\" }}", &d), "default");
    assert_eq!(render("{{ or .Name \"default\" }}", &d), "world");
    assert_eq!(render("{{ and .Name .Count }}", &d), "3");
    assert_eq!(render("{{ and .Empty .Count }}", &d), "");
    // The second operand would fail; short-circuiting never evaluates it.
    assert_eq!(render("{{ and false (index .Items 99) }}", &d), "false");
    assert_eq!(render("{{ or true (index .Items 99) }}", &d), "true");
}

#[test]
fn comparisons() {
    let d = sample_data();
    assert_eq!(render("{{ eq .Name \"x\" \"y\" \"world\" }}", &d), "true");
    assert_eq!(render("{{ eq .Name \"x\" \"y\" }}", &d), "false");
    assert_eq!(render("{{ ne .Count 3 }}", &d), "false");
    assert_eq!(
        render(
            "{{ lt .Count 3.5 }} {{ le 3 .Count }} {{ gt .Ratio 0 }} {{ ge \"b\" \"a\" }}",
            &d
        ),
        "true true true true"
    );
    assert_eq!(render("{{ eq 1 1.0 }}", &d), "true");
    assert!(
        render_err("{{ eq .Name 1 }}", &d)
            .contains("error calling eq: incompatible types for comparison")
    );
}

#[test]
fn builtin_functions() {
    let d = sample_data();
    assert_eq!(render("{{ len .Labels }} {{ len .Name }}", &d), "3 5");
    assert_eq!(
        render("{{ index .Labels \"job\" }} {{ index .Items 2 }}", &d),
        "api c"
    );
    assert_eq!(
        render("{{ slice .Name 1 3 }} {{ slice .Items 2 }}", &d),
        "or [c]"
    );
    assert_eq!(render("{{ print \"a\" 1 2 \"b\" }}", &d), "a1 2b");
    assert_eq!(render("{{ println \"a\" 1 }}", &d), "a 1\n");
    assert_eq!(
        render("{{ html \"<b>&</b>\" }}", &d),
        "&lt;b&gt;&amp;&lt;/b&gt;"
    );
    assert_eq!(render("{{ js \"it's\" }}", &d), "it\\'s");
    assert_eq!(render("{{ urlquery \"a b&c\" }}", &d), "a+b%26c");
    assert!(
        render_err("{{ index .Items 5 }}", &d)
            .contains("error calling index: index out of range: 5")
    );
    assert_eq!(
        render_err("{{ index .Items 5 }}", &d),
        r#"template: t:1:3: executing "t" at <index .Items 5>: error calling index: index out of range: 5"#
    );
    assert!(render_err("{{ len 3 }}", &d).contains("error calling len: len of type int"));
    assert!(render_err("{{ not 1 2 }}", &d).contains("wrong number of args for not: want 1 got 2"));
}

#[test]
fn printf_verbs_through_templates() {
    let d = map(&[
        ("v", Value::Float(1234.5678)),
        ("n", Value::Int(42)),
        ("s", "hi".into()),
    ]);
    assert_eq!(render("{{ printf \"%.2f\" .v }}", &d), "1234.57");
    assert_eq!(
        render("{{ printf \"%f|%e|%g\" .v .v .v }}", &d),
        "1234.567800|1.234568e+03|1234.5678"
    );
    assert_eq!(
        render("{{ printf \"%d|%5d|%-4d|%x\" .n .n .n .n }}", &d),
        "42|   42|42  |2a"
    );
    assert_eq!(
        render("{{ printf \"%s|%q|%v|%t|%%\" .s .s .n true }}", &d),
        "hi|\"hi\"|42|true|%"
    );
    assert_eq!(
        render("{{ printf \"%6.1f|%g\" 3.14159 1e21 }}", &d),
        "   3.1|1e+21"
    );
    assert_eq!(render("{{ .v | printf \"%.0f\" }}", &d), "1235");
}

#[test]
fn float_values_print_as_go_v() {
    for (v, want) in [
        (1e21, "1e+21"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (123.456, "123.456"),
        (f64::NAN, "NaN"),
        (f64::NEG_INFINITY, "-Inf"),
    ] {
        assert_eq!(render("{{ .V }}", &map(&[("V", Value::Float(v))])), want);
    }
}

#[test]
fn prometheus_functions_in_templates() {
    let d = Value::Nil;
    assert_eq!(render("{{ humanize 1234567 }}", &d), "1.235M");
    assert_eq!(render("{{ humanize \"0.0012\" }}", &d), "1.2m");
    assert_eq!(render("{{ 1048576 | humanize1024 }}", &d), "1Mi");
    assert_eq!(render("{{ humanizeDuration 1234.5 }}", &d), "20m 34s");
    assert_eq!(render("{{ humanizeDuration 0.0123 }}", &d), "12.3ms");
    assert_eq!(render("{{ humanizePercentage 0.1234 }}", &d), "12.34%");
    assert_eq!(
        render("{{ humanizeTimestamp 1435065584.128 }}", &d),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(
        render("{{ humanize \"NaN\" }} {{ humanize \"-Inf\" }}", &d),
        "NaN -Inf"
    );
    assert!(
        render_err("{{ humanize \"x\" }}", &d)
            .contains(r#"strconv.ParseFloat: parsing "x": invalid syntax"#)
    );
    assert_eq!(
        render(
            "{{ title \"hello world\" }} {{ toUpper \"a\" }} {{ toLower \"B\" }}",
            &d
        ),
        "Hello World A b"
    );
    assert_eq!(render("{{ trimSpace \"  x \" }}", &d), "x");
    assert_eq!(
        render("{{ reReplaceAll \"(a+)b\" \"<$1>\" \"aab ab\" }}", &d),
        "<aa> <a>"
    );
    assert_eq!(render("{{ match \"^h.st\" \"host\" }}", &d), "true");
    assert_eq!(
        render(
            "{{ stripPort \"h.example:9100\" }} {{ stripDomain \"h.example:9100\" }}",
            &d
        ),
        "h.example h:9100"
    );
    assert_eq!(render("{{ parseDuration \"1m30s\" }}", &d), "90");
    assert_eq!(
        render("{{ toTime 1435065584 }}", &d),
        "2015-06-23 13:19:44 +0000 UTC"
    );
    assert_eq!(render("{{ (toTime 1435065584).Unix }}", &d), "1435065584");
    assert_eq!(render("{{ toDuration 90.5 }}", &d), "1m30.5s");
    assert_eq!(render("{{ safeHtml \"<b>\" }}", &d), "<b>");
    assert_eq!(
        render(
            "{{ with args 1 \"x\" }}{{ .arg0 }}-{{ .arg1 }}{{ end }}",
            &d
        ),
        "1-x"
    );
    assert_eq!(
        render("{{ graphLink \"up == 0\" }}", &d),
        "/graph?g0.expr=up+%3D%3D+0&g0.tab=0"
    );
}

/// Expectations from Prometheus's `template/template_test.go`, where inputs are ranged over.
#[test]
fn prometheus_upstream_expectations() {
    let floats = |v: &[f64]| Value::List(v.iter().map(|f| Value::Float(*f)).collect());
    let ints = |v: &[i64]| Value::List(v.iter().map(|i| Value::Int(*i)).collect());
    let strings = |v: &[&str]| Value::List(v.iter().map(|s| Value::from(*s)).collect());
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "{{ range . }}{{ humanize . }}:{{ end }}",
            floats(&[0.0, 1.0, 1234567.0, 0.12]),
            "0:1:1.235M:120m:",
        ),
        (
            "{{ range . }}{{ humanize . }}:{{ end }}",
            strings(&["0.0", "1.0", "1234567.0", ".12"]),
            "0:1:1.235M:120m:",
        ),
        (
            "{{ range . }}{{ humanize . }}:{{ end }}",
            ints(&[0, -1, 1, 1234567, i64::MAX]),
            "0:-1:1:1.235M:9.223E:",
        ),
        (
            "{{ range . }}{{ humanize1024 . }}:{{ end }}",
            floats(&[0.0, 1.0, 1048576.0, 0.12]),
            "0:1:1Mi:0.12:",
        ),
        (
            "{{ range . }}{{ humanize1024 . }}:{{ end }}",
            ints(&[0, -1, 1, 1234567, i64::MAX]),
            "0:-1:1:1.177Mi:8Ei:",
        ),
        (
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            floats(&[
                0.0,
                1.0,
                60.0,
                3600.0,
                86400.0,
                86400.0 + 3600.0,
                -(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0),
                899.99,
            ]),
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:",
        ),
        (
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            strings(&[".1", ".0001", ".12345", "60.1", "60.5", "1.2345", "12.345"]),
            "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
        ),
        (
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            ints(&[0, -1, 1, 1234567]),
            "0s:-1s:1s:14d 6h 56m 7s:",
        ),
        (
            "{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:{{humanizeTimestamp .}}:{{ end }}",
            strings(&["+Inf", "-Inf", "NaN"]),
            "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:",
        ),
        (
            "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}",
            Value::Nil,
            "-22.22%:0%:12.35%:123.5%",
        ),
        (
            "{{ range . }}{{ humanizePercentage . }}:{{ end }}",
            ints(&[0, -1, 1, 1234567, i64::MAX]),
            "0%:-100%:100%:1.235e+08%:9.223e+20%:",
        ),
        (
            "{{ range . }}{{ humanizeTimestamp . }}:{{ end }}",
            ints(&[0, -1, 1, 1234567, 9223372036]),
            "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:",
        ),
        (
            "{{ (1435065584.128 | toTime).Format \"2006\" }}",
            Value::Nil,
            "2015",
        ),
        (
            "{{ (\"1435065584.128\" | toTime).Format \"2006\" }}",
            Value::Nil,
            "2015",
        ),
        ("{{ \"aa bb CC\" | title }}", Value::Nil, "Aa Bb CC"),
        (
            "{{ match \"a+\" \"aa\" }} {{ match \"a+\" \"b\" }}",
            Value::Nil,
            "true false",
        ),
        (
            "{{ reReplaceAll \"(a)b\" \"x$1\" \"ab\" }}",
            Value::Nil,
            "xa",
        ),
        (
            "{{ graphLink \"up\" }} {{ tableLink \"up\" }}",
            Value::Nil,
            "/graph?g0.expr=up&g0.tab=0 /graph?g0.expr=up&g0.tab=1",
        ),
        (
            "{{ printf \"%0.2f\" (parseDuration \"1h2m10ms\") }}",
            Value::Nil,
            "3720.01",
        ),
        (
            "{{define \"x\"}}{{.arg0}} {{.arg1}}{{end}}{{template \"x\" (args 1 \"2\")}}",
            Value::Nil,
            "1 2",
        ),
        (
            "{{ \"[2001:0DB8::1]:12345\" | stripPort }} {{ \"[2001:0DB8::1]::12345\" | stripPort }} {{ \"2001:0DB8::1\" | stripPort }}",
            Value::Nil,
            "2001:0DB8::1 [2001:0DB8::1]::12345 2001:0DB8::1",
        ),
    ];
    for (text, data, want) in cases {
        assert_eq!(render(text, &data), want, "{text}");
    }
    assert_eq!(
        render_err("{{ humanize \"one\" }}", &Value::Nil),
        r#"template: t:1:3: executing "t" at <humanize "one">: error calling humanize: strconv.ParseFloat: parsing "one": invalid syntax"#
    );
    assert_eq!(
        render_err("{{ \"one\" | humanizePercentage }}", &Value::Nil),
        r#"template: t:1:11: executing "t" at <humanizePercentage>: error calling humanizePercentage: strconv.ParseFloat: parsing "one": invalid syntax"#
    );
    assert_eq!(
        render_err(
            "{{ range . }}{{ humanizeTimestamp . }}:{{ end }}",
            &ints(&[i64::MIN])
        ),
        r#"template: t:1:16: executing "t" at <humanizeTimestamp .>: error calling humanizeTimestamp: -9.223372036854776e+18 cannot be represented as a nanoseconds timestamp since it overflows int64"#
    );
    assert_eq!(
        render_err("{{ args | first }}", &Value::Nil),
        r#"template: t:1:10: executing "t" at <first>: error calling first: wrong type for value; expected template.queryResult; got map[string]interface {}"#
    );
}

#[test]
fn query_functions_use_the_engine() {
    let engine = |q: &str| -> Result<Vec<QuerySample>, String> {
        if q == "fail" {
            return Err("query failed".to_owned());
        }
        let sample = |instance: &str, value: f64| QuerySample {
            labels: [
                ("instance".to_owned(), instance.to_owned()),
                ("__value__".to_owned(), value.to_string()),
            ]
            .into_iter()
            .collect(),
            value,
        };
        Ok(vec![sample("b", 2.0), sample("a", 1.5)])
    };
    let funcs = prometheus_funcs(PrometheusFuncsConfig {
        query: Some(Arc::new(engine)),
        external_url: "http://prom.example:9090/prefix".to_owned(),
        path_prefix: "/prefix".to_owned(),
        now: 1.5,
    });
    let r = |t: &str| render_with(t, &Value::Nil, &funcs);
    assert_eq!(r("{{ query \"up\" | first | value }}").unwrap(), "2");
    assert_eq!(
        r("{{ with query \"up\" }}{{ . | first | label \"instance\" }}{{ end }}").unwrap(),
        "b"
    );
    assert_eq!(
        r("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}={{ .Value }} {{ end }}").unwrap(),
        "a=1.5 b=2 "
    );
    assert_eq!(r("{{ query \"up\" | first | strvalue }}").unwrap(), "2");
    assert_eq!(
        r("{{ externalURL }} {{ pathPrefix }} {{ now }}").unwrap(),
        "http://prom.example:9090/prefix /prefix 1.5"
    );
    assert_eq!(
        r("{{ query \"fail\" }}").unwrap_err().to_string(),
        r#"template: t:1:3: executing "t" at <query "fail">: error calling query: query failed"#
    );
    let no_engine = prometheus_funcs(PrometheusFuncsConfig::default());
    assert!(
        render_with("{{ query \"up\" }}", &Value::Nil, &no_engine)
            .unwrap_err()
            .to_string()
            .contains("no query engine")
    );
    assert!(render_with("{{ first (args) }}", &Value::Nil, &funcs).is_err());
}

#[test]
fn parse_errors_carry_positions() {
    let funcs = prometheus_funcs(PrometheusFuncsConfig::default());
    let err = |text: &str| Template::parse("t", text, &funcs).unwrap_err().to_string();
    assert_eq!(err("hello {{ .foo"), "template: t:1:6: unclosed action");
    assert_eq!(
        err("a\nb {{ foo 1 }}"),
        r#"template: t:2:5: function "foo" not defined"#
    );
    assert_eq!(err("{{ if true }}x"), "template: t:1:14: unexpected EOF");
    assert_eq!(err("{{ end }}"), "template: t:1:3: unexpected {{end}}");
    assert_eq!(
        err("{{ $x }}"),
        r#"template: t:1:3: undefined variable "$x""#
    );
    assert_eq!(
        err("{{ \"abc }}"),
        "template: t:1:0: unterminated quoted string"
    );
    assert_eq!(err("{{ }}"), "template: t:1:3: missing value for command");
    assert_eq!(
        err("{{ break }}"),
        "template: t:1:3: {{break}} outside {{range}}"
    );
    assert_eq!(err("{{/* open"), "template: t:1:0: unclosed comment");
    assert_eq!(
        err("{{ .a | 1 }}"),
        "template: t:1:8: non executable command in pipeline stage 2"
    );
    assert_eq!(
        err("{{ 12abc }}"),
        r#"template: t:1:3: bad number syntax: "12abc""#
    );
    assert!(err("{{ if }}{{ end }}").contains("missing value for command"));
    assert_eq!(
        err("{{\u{a0}}}"),
        "template: t:1:2: unrecognized character in action: U+00A0"
    );
    assert_eq!(
        err("{{ # }}"),
        "template: t:1:3: unrecognized character in action: U+0023 '#'"
    );
    assert!(err("{{ (((( 1 }}").contains("unclosed left paren"));
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(200), ")".repeat(200));
    assert!(err(&deep).contains("nesting deeper than"));
}

#[test]
fn execution_errors_match_go_format() {
    let d = map(&[("foo", "x".into()), ("n", Value::Int(1))]);
    assert_eq!(
        render_err("{{ .foo.bar }}", &d),
        r#"template: t:1:3: executing "t" at <.foo.bar>: can't evaluate field bar in type string"#
    );
    assert_eq!(
        render_err("line1\n  {{ $x := .n }}{{ $x.y }}", &d),
        r#"template: t:2:19: executing "t" at <$x.y>: can't evaluate field y in type int"#
    );
    let err = render_err(
        r#"{{ define "inner" }}{{ .nope.x }}{{ end }}{{ template "inner" 5 }}"#,
        &d,
    );
    assert_eq!(
        err,
        r#"template: t:1:23: executing "inner" at <.nope.x>: can't evaluate field nope in type int"#
    );
    assert!(render_err("{{ .foo 1 }}", &d).contains("foo is not a method but has arguments"));
}

#[test]
fn limits_stop_hostile_templates() {
    let funcs = Funcs::builtins();
    let data = Value::List((0..100).map(Value::Int).collect());
    let nested = "{{ range . }}{{ range $ }}{{ range $ }}x{{ end }}{{ end }}{{ end }}";
    let err = Template::parse("t", nested, &funcs)
        .unwrap()
        .execute(&data)
        .unwrap_err();
    assert!(
        err.to_string().contains("execution exceeded 1000000 steps"),
        "{err}"
    );

    let big = Template::parse(
        "t",
        "{{ range . }}{{ range $ }}0123456789{{ end }}{{ end }}",
        &funcs,
    )
    .unwrap()
    .with_limits(Limits {
        max_output_bytes: 50_000,
        ..Limits::default()
    });
    assert!(
        big.execute(&data)
            .unwrap_err()
            .to_string()
            .contains("output exceeds 50000 bytes")
    );

    let recursive = Template::parse(
        "t",
        r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#,
        &funcs,
    )
    .unwrap();
    let err = recursive.execute(&Value::Nil).unwrap_err();
    assert!(
        err.to_string()
            .contains("exceeded maximum template depth (100)"),
        "{err}"
    );
    assert!(err.to_string().contains(r#"executing "r""#));

    // Doubling a string through a variable stops at the value limit, not at memory's end.
    let doubling = Template::parse(
        "t",
        r#"{{ $x := "ab" }}{{ range 64 }}{{ $x = printf "%s%s" $x $x }}{{ end }}"#,
        &funcs,
    )
    .unwrap();
    let err = doubling.execute(&Value::Nil).unwrap_err().to_string();
    assert!(err.contains("value exceeds 1048576 bytes"), "{err}");
    let nesting = Template::parse(
        "t",
        r#"{{ $x := 1 }}{{ range 64 }}{{ $x = slice (print $x $x) 0 }}{{ end }}"#,
        &funcs,
    )
    .unwrap();
    assert!(nesting.execute(&Value::Nil).is_err());

    let deep_value = Template::parse(
        "t",
        r#"{{ $x := 1 }}{{ range 100000 }}{{ $x = args $x }}{{ end }}"#,
        &funcs_with_args(),
    )
    .unwrap();
    let err = deep_value.execute(&Value::Nil).unwrap_err().to_string();
    assert!(err.contains("levels of nesting"), "{err}");

    // Nested controls inside recursive templates are bounded before the stack is.
    let nested_ifs = format!(
        r#"{{{{ define "r" }}}}{}{{{{ template "r" . }}}}{}{{{{ end }}}}{{{{ template "r" . }}}}"#,
        "{{ if true }}".repeat(90),
        "{{ end }}".repeat(90)
    );
    let err = Template::parse("t", &nested_ifs, &funcs)
        .unwrap()
        .execute(&Value::Nil)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exceeded maximum nesting"), "{err}");

    let slow = Template::parse("t", "{{ range 100000000 }}{{ end }}", &funcs)
        .unwrap()
        .with_limits(Limits {
            max_steps: u64::MAX,
            max_duration: std::time::Duration::from_millis(50),
            ..Limits::default()
        });
    let err = slow.execute(&Value::Nil).unwrap_err().to_string();
    assert!(err.contains("execution exceeded 50ms"), "{err}");

    // A huge printf width is capped rather than allocated.
    let width = Template::parse("t", "{{ printf \"%999999999999d\" 1 | len }}", &funcs).unwrap();
    assert!(width.execute(&Value::Nil).is_ok());
}

#[test]
fn templates_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<Funcs>();
}

#[test]
fn alert_templates_expand_like_prometheus() {
    let funcs = prometheus_funcs(PrometheusFuncsConfig::default());
    let data = AlertTemplateData {
        labels: [("instance", "web-1:9100"), ("job", "node")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        external_labels: [("cluster".to_owned(), "eu-1".to_owned())]
            .into_iter()
            .collect(),
        external_url: "http://prom:9090".to_owned(),
        value: 0.123456789,
    };
    let expand = |text: &str| expand_alert_template("__alert_Test", text, &data, &funcs);
    assert_eq!(
        expand("{{ $labels.instance }} of job {{ $labels.job }} is down ({{ $value }})").unwrap(),
        "web-1:9100 of job node is down (0.123456789)"
    );
    assert_eq!(
        expand("{{ $value | humanizePercentage }}").unwrap(),
        "12.35%"
    );
    assert_eq!(
        expand("{{ $externalLabels.cluster }} {{ $externalURL }}").unwrap(),
        "eu-1 http://prom:9090"
    );
    // missingkey=zero: an absent label prints as empty.
    assert_eq!(expand("[{{ $labels.absent }}]").unwrap(), "[]");
    assert_eq!(expand("{{ .Labels.job }}").unwrap(), "node");
    let err = expand("{{ $labels.job.x }}").unwrap_err().to_string();
    assert!(err.starts_with("template: __alert_Test:1:"), "{err}");
    assert!(
        expand("{{ nosuchfunc }}")
            .unwrap_err()
            .to_string()
            .contains(r#"function "nosuchfunc" not defined"#)
    );
}

fn shared_dir() -> Option<PathBuf> {
    let root = std::env::var_os("SIGHTLINE_SHARED")
        .map_or_else(|| PathBuf::from("/work/shared"), PathBuf::from);
    let dir = root.join("datasets/alerting");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} is absent", dir.display());
        None
    }
}

fn utc(secs: i64) -> Value {
    Value::Time(
        FixedOffset::east_opt(0)
            .unwrap()
            .timestamp_opt(secs, 0)
            .unwrap(),
    )
}

fn alert(
    status: &str,
    labels: &[(&str, &str)],
    annotations: &[(&str, &str)],
    fingerprint: &str,
) -> Value {
    map(&[
        ("Status", status.into()),
        ("Labels", Value::string_map(labels.iter().copied())),
        (
            "Annotations",
            Value::string_map(annotations.iter().copied()),
        ),
        ("StartsAt", utc(1_700_000_000)),
        (
            "EndsAt",
            utc(if status == "resolved" {
                1_700_000_600
            } else {
                -62135596800
            }),
        ),
        ("GeneratorURL", "http://prom:9090/graph?g0.expr=up".into()),
        ("Fingerprint", fingerprint.into()),
    ])
}

/// Alertmanager's `template.Data` for a group of two firing alerts and one resolved one.
fn alertmanager_data() -> Value {
    let alerts = list(&[
        alert(
            "firing",
            &[
                ("alertname", "HighLatency"),
                ("job", "api"),
                ("severity", "warning"),
                ("instance", "a:1"),
            ],
            &[("summary", "latency high on a")],
            "1a",
        ),
        alert(
            "firing",
            &[
                ("alertname", "HighLatency"),
                ("job", "api"),
                ("severity", "critical"),
                ("instance", "b:1"),
            ],
            &[("summary", "latency high on b")],
            "2b",
        ),
        alert(
            "resolved",
            &[
                ("alertname", "HighLatency"),
                ("job", "api"),
                ("severity", "info"),
                ("instance", "c:1"),
            ],
            &[("summary", "latency high on c")],
            "3c",
        ),
    ]);
    map(&[
        ("Receiver", "team-x pager".into()),
        ("Status", "firing".into()),
        ("Alerts", alerts),
        (
            "GroupLabels",
            Value::string_map([("alertname", "HighLatency")]),
        ),
        (
            "CommonLabels",
            Value::string_map([("alertname", "HighLatency"), ("job", "api")]),
        ),
        (
            "CommonAnnotations",
            Value::string_map(Vec::<(String, String)>::new()),
        ),
        ("ExternalURL", "http://am:9093".into()),
    ])
}

#[test]
fn alertmanager_default_templates_parse_and_render() {
    let Some(dir) = shared_dir() else {
        return;
    };
    let template_dir = dir.join("alertmanager/template");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&template_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmpl"))
        .collect();
    entries.sort();
    assert!(!entries.is_empty());
    let funcs = alertmanager_funcs();
    let mut set = Template::parse("", "", &funcs).unwrap();
    for path in &entries {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        set.add_parse(&name, &text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let data = alertmanager_data();
    let run = |name: &str| {
        set.execute_template(name, &data)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };

    assert_eq!(run("__subject"), "[FIRING:2] HighLatency (api)");
    assert_eq!(run("email.default.subject"), "[FIRING:2] HighLatency (api)");
    assert_eq!(
        run("__alertmanagerURL"),
        "http://am:9093/#/alerts?receiver=team-x+pager"
    );
    assert_eq!(run("slack.default.color"), "danger");
    assert_eq!(run("jira.default.priority"), "High");
    let alerts = match &data {
        Value::Map(m) => m["Alerts"].clone(),
        _ => unreachable!(),
    };
    let list_text = set.execute_template("__text_alert_list", &alerts).unwrap();
    assert!(list_text.starts_with(
        "Labels:\n - alertname = HighLatency\n - instance = a:1\n - job = api\n - severity = warning\nAnnotations:\n - summary = latency high on a\nSource: http://prom:9090/graph?g0.expr=up\n"
    ), "{list_text}");
    let message = run("opsgenie.default.description");
    assert!(
        message.contains("Alerts Firing:\nLabels:\n - alertname = HighLatency"),
        "{message}"
    );
    assert!(message.contains("Alerts Resolved:\nLabels:"), "{message}");
    let html = run("email.default.html");
    assert!(
        html.contains("HighLatency") && html.contains("http://am:9093"),
        "{html}"
    );

    // Every define in the set renders on group data, except the list helpers that
    // expect an alert list as dot (as the dataset's MANIFEST notes for amtool).
    let list_helpers = [
        "__text_alert_list",
        "__text_alert_list_markdown",
        "pagerduty.default.instances",
    ];
    for name in set.template_names() {
        let result = set.execute_template(name, &data);
        if list_helpers.contains(&name) {
            assert!(result.is_err(), "{name} should need an alert list");
        } else {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// Rule files' `annotations:` and `labels:` values, found by walking each YAML document.
fn rule_templates(doc: &serde_yaml_ng::Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(groups) = doc.get("groups").and_then(|g| g.as_sequence()) else {
        return out;
    };
    for group in groups {
        for rule in group
            .get("rules")
            .and_then(|r| r.as_sequence())
            .into_iter()
            .flatten()
        {
            for key in ["annotations", "annotation", "labels"] {
                if let Some(mapping) = rule.get(key).and_then(|m| m.as_mapping()) {
                    out.extend(
                        mapping
                            .values()
                            .filter_map(|v| v.as_str().map(str::to_owned)),
                    );
                }
            }
        }
    }
    out
}

#[test]
fn rule_file_templates_parse() {
    let Some(dir) = shared_dir() else {
        return;
    };
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let funcs = prometheus_funcs(PrometheusFuncsConfig::default());
    let data = AlertTemplateData {
        labels: BTreeMap::from([
            ("instance".to_owned(), "localhost:9090".to_owned()),
            ("job".to_owned(), "prometheus".to_owned()),
        ]),
        value: 1.0,
        ..AlertTemplateData::default()
    };
    let mut checked = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        // Multi-document files: Prometheus reads only the first document, but all are checked.
        for doc_text in text.split("\n---\n") {
            let Ok(doc) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(doc_text) else {
                continue;
            };
            for template in rule_templates(&doc) {
                // The dataset has no deliberately bad templates: its `.bad` rule files fail
                // for other reasons (expressions, fields), so every template must parse.
                let source = format!("{ALERT_TEMPLATE_PREFIX}{template}");
                Template::parse("__alert_test", &source, &funcs)
                    .unwrap_or_else(|e| panic!("{}: {template:?}: {e}", path.display()));
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} templates found");
    let expand = |t: &str| expand_alert_template("__alert_InstanceDown", t, &data, &funcs).unwrap();
    assert_eq!(
        expand("Instance {{ $labels.instance }} down"),
        "Instance localhost:9090 down"
    );
    assert_eq!(
        expand(
            "{{$labels.instance}} of job {{$labels.job}} has been down for more than 5 minutes."
        ),
        "localhost:9090 of job prometheus has been down for more than 5 minutes."
    );
    // `$.labels` (lowercase) in rulefmt's test.yaml parses, and fails at execution in
    // Prometheus as here: the data has `Labels`, so `$.labels` is empty and `.service` a field of a string.
    assert!(expand_alert_template("t", "{{ $.labels.service }}", &data, &funcs).is_err());
}
