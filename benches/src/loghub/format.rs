//! Log formats: how to split a raw Loghub line into its header fields and its `Content`.
//!
//! The formats are data: logparser-style format strings, one per system, exactly as the
//! Loghub benchmarks (`logpai/logparser`, `benchmark/*_benchmark.py`) write them, and one
//! generic interpreter, [`LogFormat::parse`], that turns a format into a regex the way
//! logparser's `generate_logformat_regex` does: each `<Field>` becomes a lazy named group
//! `(?P<Field>.*?)`, runs of spaces between fields match `\s+`, everything else is a regex
//! fragment (so `\[<Pid>\]` and `(\[<PID>\])?` work), and the whole is anchored at both ends.
//! A line is trimmed first and a line that does not match is skipped, as logparser does.

use regex::Regex;

use super::LoghubError;

/// Formats of the 16 Loghub 2k systems, as the benchmarks define them.
pub const LOG_FORMATS: &[(&str, &str)] = &[
    (
        "Android",
        r"<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
    ),
    ("Apache", r"\[<Time>\] \[<Level>\] <Content>"),
    (
        "BGL",
        r"<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
    ),
    (
        "Hadoop",
        r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
    ),
    (
        "HDFS",
        r"<Date> <Time> <Pid> <Level> <Component>: <Content>",
    ),
    ("HealthApp", r"<Time>\|<Component>\|<Pid>\|<Content>"),
    (
        "HPC",
        r"<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
    ),
    (
        "Linux",
        r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
    ),
    (
        "Mac",
        r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>",
    ),
    (
        "OpenSSH",
        r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
    ),
    (
        "OpenStack",
        r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
    ),
    ("Proxifier", r"\[<Time>\] <Program> - <Content>"),
    ("Spark", r"<Date> <Time> <Level> <Component>: <Content>"),
    (
        "Thunderbird",
        r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: <Content>",
    ),
    (
        "Windows",
        r"<Date> <Time>, <Level>                  <Component>    <Content>",
    ),
    (
        "Zookeeper",
        r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
    ),
];

/// The format string of `system`, if it is in [`LOG_FORMATS`].
pub fn format_of(system: &str) -> Option<&'static str> {
    LOG_FORMATS
        .iter()
        .find(|(name, _)| *name == system)
        .map(|(_, format)| *format)
}

/// A compiled log format.
#[derive(Debug, Clone)]
pub struct LogFormat {
    regex: Regex,
    fields: Vec<String>,
}

impl LogFormat {
    /// Compiles a logparser-style format string (see the module docs).
    pub fn parse(format: &str) -> Result<Self, LoghubError> {
        let mut pattern = String::from("^");
        let mut fields = Vec::new();
        let mut rest = format;
        loop {
            let field = rest.find('<').and_then(|open| {
                let close = open + rest[open..].find('>')?;
                let name = &rest[open + 1..close];
                let valid =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                valid.then_some((open, close, name))
            });
            let Some((open, close, name)) = field else {
                push_separator(&mut pattern, rest);
                break;
            };
            push_separator(&mut pattern, &rest[..open]);
            pattern.push_str(&format!("(?P<{name}>.*?)"));
            fields.push(name.to_owned());
            rest = &rest[close + 1..];
        }
        pattern.push('$');
        if !fields.iter().any(|f| f == "Content") {
            return Err(LoghubError::Format {
                format: format.to_owned(),
                reason: "no <Content> field".to_owned(),
            });
        }
        let regex = Regex::new(&pattern).map_err(|e| LoghubError::Format {
            format: format.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(LogFormat { regex, fields })
    }

    /// The field names, in order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The `Content` field of `line` (trimmed first), or `None` if the line does not match.
    pub fn content<'a>(&self, line: &'a str) -> Option<&'a str> {
        let captures = self.regex.captures(line.trim())?;
        captures.name("Content").map(|m| m.as_str())
    }
}

/// Appends a literal part of a format: runs of spaces match any whitespace run.
fn push_separator(pattern: &mut String, literal: &str) {
    let mut in_spaces = false;
    for c in literal.chars() {
        if c == ' ' {
            if !in_spaces {
                pattern.push_str(r"\s+");
            }
            in_spaces = true;
        } else {
            pattern.push(c);
            in_spaces = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(system: &str, line: &str) -> Option<String> {
        let format = LogFormat::parse(format_of(system).unwrap()).unwrap();
        format.content(line).map(str::to_owned)
    }

    #[test]
    fn every_shipped_format_compiles() {
        for (system, format) in LOG_FORMATS {
            let parsed = LogFormat::parse(format).unwrap_or_else(|e| panic!("{system}: {e}"));
            assert!(parsed.fields().iter().any(|f| f == "Content"));
        }
    }

    #[test]
    fn splits_headers_of_several_systems() {
        assert_eq!(
            content(
                "HDFS",
                "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating"
            )
            .as_deref(),
            Some("PacketResponder 1 for block blk_38865049064139660 terminating")
        );
        // Optional `[PID]` group, trailing space trimmed.
        assert_eq!(
            content(
                "Linux",
                "Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown "
            )
            .as_deref(),
            Some("check pass; user unknown")
        );
        assert_eq!(
            content(
                "Linux",
                "Jun 15 04:06:18 combo su(pam_unix): session opened"
            )
            .as_deref(),
            Some("session opened")
        );
        // Wide literal spacing in the format matches any whitespace run.
        assert_eq!(
            content(
                "Windows",
                "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack v6.1"
            )
            .as_deref(),
            Some("Loaded Servicing Stack v6.1")
        );
        assert_eq!(
            content(
                "Zookeeper",
                "2015-07-29 19:04:12,394 - INFO  [/10.10.34.11:3888:QuorumCnxManager$Listener@493] - Received connection request /10.10.34.11:45307"
            )
            .as_deref(),
            Some("Received connection request /10.10.34.11:45307")
        );
    }

    #[test]
    fn lines_that_do_not_match_are_rejected() {
        assert_eq!(content("OpenSSH", "not a log line"), None);
    }

    #[test]
    fn a_format_without_content_is_an_error() {
        assert!(LogFormat::parse("<Date> <Time>").is_err());
    }
}
