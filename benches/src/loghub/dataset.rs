//! Reading the Loghub layout (`<dir>/<System>/<System>_2k.log` and its CSVs) and reading and
//! writing parser outputs (`<System>.csv` with `LineId,PatternId,Template`).

use std::fs;
use std::path::{Path, PathBuf};

use super::LoghubError;
use super::format::{LogFormat, format_of};
use super::metrics::{Accuracy, ScoredLine, accuracy, correct_template};

/// Where the contents of a system came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentSource {
    /// Split from the raw `.log` by the system's shipped log format.
    LogFormat,
    /// No format is shipped for the system: the `Content` column of the structured CSV.
    StructuredCsv,
}

/// The ground truth of one system from a `*_structured*.csv` file, in file order.
#[derive(Debug, Clone, Default)]
pub struct GroundTruth {
    /// `LineId` of each row (1-based line number among the parsed lines).
    pub line_ids: Vec<usize>,
    /// `Content` of each row.
    pub contents: Vec<String>,
    /// `EventId` of each row.
    pub event_ids: Vec<String>,
    /// `EventTemplate` of each row.
    pub templates: Vec<String>,
}

/// One system: its contents and the ground truths that are present.
#[derive(Debug, Clone)]
pub struct System {
    /// The system's name (its folder).
    pub name: String,
    /// The contents to mine, in line order; content `i` has `LineId` `i + 1`.
    pub contents: Vec<String>,
    /// How the contents were obtained.
    pub source: ContentSource,
    /// Contents that differ from the corrected CSV's `Content` column (a split check).
    pub content_mismatches: usize,
    /// `<System>_2k.log_structured_corrected.csv`.
    pub corrected: Option<GroundTruth>,
    /// `<System>_2k.log_structured.csv`.
    pub original: Option<GroundTruth>,
}

/// One line of a parser's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine {
    /// The parser's group label.
    pub pattern: String,
    /// The parser's template, `<*>` for variables.
    pub template: String,
}

/// The systems under `dir`: folders `<S>` holding `<S>_2k.log`, sorted by name.
pub fn list_systems(dir: &Path) -> Result<Vec<String>, LoghubError> {
    let entries = fs::read_dir(dir).map_err(|source| LoghubError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut systems: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            entry
                .path()
                .join(format!("{name}_2k.log"))
                .is_file()
                .then_some(name)
        })
        .collect();
    systems.sort();
    Ok(systems)
}

fn system_file(dir: &Path, system: &str, suffix: &str) -> PathBuf {
    dir.join(system).join(format!("{system}_2k.log{suffix}"))
}

/// Reads one system: splits its raw lines by its format and loads the ground truths.
pub fn read_system(dir: &Path, system: &str) -> Result<System, LoghubError> {
    let read_truth = |suffix: &str| -> Result<Option<GroundTruth>, LoghubError> {
        let path = system_file(dir, system, suffix);
        if path.is_file() {
            read_ground_truth(&path).map(Some)
        } else {
            Ok(None)
        }
    };
    let corrected = read_truth("_structured_corrected.csv")?;
    let original = read_truth("_structured.csv")?;

    let (contents, source) = match format_of(system) {
        Some(format) => {
            let format = LogFormat::parse(format)?;
            let path = system_file(dir, system, "");
            let bytes = fs::read(&path).map_err(|source| LoghubError::Io { path, source })?;
            let text = String::from_utf8_lossy(&bytes);
            let contents: Vec<String> = text
                .lines()
                .filter_map(|line| format.content(line).map(str::to_owned))
                .collect();
            (contents, ContentSource::LogFormat)
        }
        None => {
            let truth = corrected.as_ref().or(original.as_ref()).ok_or_else(|| {
                LoghubError::NoGroundTruth {
                    system: system.to_owned(),
                }
            })?;
            (truth.contents.clone(), ContentSource::StructuredCsv)
        }
    };
    let content_mismatches = corrected.as_ref().map_or(0, |truth| {
        truth
            .line_ids
            .iter()
            .zip(&truth.contents)
            .filter(|(id, expected)| contents.get(**id - 1) != Some(*expected))
            .count()
    });
    Ok(System {
        name: system.to_owned(),
        contents,
        source,
        content_mismatches,
        corrected,
        original,
    })
}

fn column(path: &Path, headers: &csv::StringRecord, name: &str) -> Result<usize, LoghubError> {
    headers
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| LoghubError::MissingColumn {
            path: path.to_owned(),
            column: name.to_owned(),
        })
}

fn csv_error(path: &Path, source: csv::Error) -> LoghubError {
    LoghubError::Csv {
        path: path.to_owned(),
        source,
    }
}

/// Reads a `*_structured*.csv` file.
pub fn read_ground_truth(path: &Path) -> Result<GroundTruth, LoghubError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| csv_error(path, e))?;
    let headers = reader.headers().map_err(|e| csv_error(path, e))?.clone();
    let line_id = column(path, &headers, "LineId")?;
    let content = column(path, &headers, "Content")?;
    let event_id = column(path, &headers, "EventId")?;
    let template = column(path, &headers, "EventTemplate")?;
    let mut truth = GroundTruth::default();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| csv_error(path, e))?;
        let id: usize = record[line_id]
            .trim()
            .parse()
            .ok()
            .filter(|&id| id > 0)
            .ok_or_else(|| LoghubError::BadRow {
                path: path.to_owned(),
                row: row + 2,
                reason: format!("LineId {:?} is not a positive integer", &record[line_id]),
            })?;
        truth.line_ids.push(id);
        truth.contents.push(record[content].to_owned());
        truth.event_ids.push(record[event_id].to_owned());
        truth.templates.push(record[template].to_owned());
    }
    Ok(truth)
}

/// Writes a parser's output as `LineId,PatternId,Template`, line `i` having `LineId` `i + 1`.
pub fn write_output(path: &Path, lines: &[ParsedLine]) -> Result<(), LoghubError> {
    let mut writer = csv::Writer::from_path(path).map_err(|e| csv_error(path, e))?;
    writer
        .write_record(["LineId", "PatternId", "Template"])
        .map_err(|e| csv_error(path, e))?;
    for (i, line) in lines.iter().enumerate() {
        writer
            .write_record([(i + 1).to_string().as_str(), &line.pattern, &line.template])
            .map_err(|e| csv_error(path, e))?;
    }
    writer.flush().map_err(|source| LoghubError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads a parser output written by [`write_output`] (or any tool using the same columns),
/// indexed by `LineId - 1`; missing line ids are `None`.
pub fn read_output(path: &Path) -> Result<Vec<Option<ParsedLine>>, LoghubError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| csv_error(path, e))?;
    let headers = reader.headers().map_err(|e| csv_error(path, e))?.clone();
    let line_id = column(path, &headers, "LineId")?;
    let pattern = column(path, &headers, "PatternId")?;
    let template = column(path, &headers, "Template")?;
    let mut lines: Vec<Option<ParsedLine>> = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| csv_error(path, e))?;
        let id: usize = record[line_id]
            .trim()
            .parse()
            .ok()
            .filter(|&id| id > 0)
            .ok_or_else(|| LoghubError::BadRow {
                path: path.to_owned(),
                row: row + 2,
                reason: format!("LineId {:?} is not a positive integer", &record[line_id]),
            })?;
        if lines.len() < id {
            lines.resize(id, None);
        }
        lines[id - 1] = Some(ParsedLine {
            pattern: record[pattern].to_owned(),
            template: record[template].to_owned(),
        });
    }
    Ok(lines)
}

/// Which ground truth a score is against, which fixes the labels (see [`super::metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// `_structured_corrected.csv`: groups by template string, parser templates corrected.
    Corrected,
    /// `_structured.csv`: groups by `EventId`, raw template strings.
    Original,
}

/// Scores a parser output against one ground truth. A line the output lacks has no parser
/// label, so it and its ground-truth group can never be right.
pub fn score(truth: &GroundTruth, output: &[Option<ParsedLine>], labels: Labels) -> Accuracy {
    let templates: Vec<String> = truth
        .line_ids
        .iter()
        .map(|id| match output.get(id - 1).and_then(Option::as_ref) {
            Some(line) if labels == Labels::Corrected => correct_template(&line.template),
            Some(line) => line.template.clone(),
            None => String::new(),
        })
        .collect();
    let lines: Vec<ScoredLine<'_>> = truth
        .line_ids
        .iter()
        .enumerate()
        .map(|(row, id)| ScoredLine {
            truth_group: match labels {
                Labels::Corrected => &truth.templates[row],
                Labels::Original => &truth.event_ids[row],
            },
            truth_template: &truth.templates[row],
            parser_group: output
                .get(id - 1)
                .and_then(Option::as_ref)
                .map(|line| line.pattern.as_str()),
            parser_template: &templates[row],
        })
        .collect();
    accuracy(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_patterns::{Miner, MinerConfig};

    const RAW: &str = "\
081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38 terminating
081109 203807 222 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block blk_-69 terminating
this line does not match the format
081109 204005 35 INFO dfs.FSNamesystem: Verification succeeded for blk_71, size 67108864
081109 204106 329 INFO dfs.DataNode$PacketResponder: PacketResponder 2 for block blk_-1 terminating
";

    const CORRECTED: &str = "\
LineId,Date,Time,Pid,Level,Component,Content,EventId,EventTemplate
1,081109,203615,148,INFO,dfs.DataNode$PacketResponder,PacketResponder 1 for block blk_38 terminating,E1,PacketResponder <*> for block <*> terminating
2,081109,203807,222,INFO,dfs.DataNode$PacketResponder,PacketResponder 0 for block blk_-69 terminating,E1,PacketResponder <*> for block <*> terminating
3,081109,204005,35,INFO,dfs.FSNamesystem,\"Verification succeeded for blk_71, size 67108864\",E2,\"Verification succeeded for <*>, size <*>\"
4,081109,204106,329,INFO,dfs.DataNode$PacketResponder,PacketResponder 2 for block blk_-1 terminating,E1,PacketResponder <*> for block <*> terminating
";

    fn write(dir: &Path, system: &str, suffix: &str, text: &str) {
        fs::create_dir_all(dir.join(system)).unwrap();
        fs::write(system_file(dir, system, suffix), text).unwrap();
    }

    #[test]
    fn reads_splits_mines_writes_and_scores_a_synthetic_system() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "HDFS", "", RAW);
        write(dir.path(), "HDFS", "_structured_corrected.csv", CORRECTED);
        assert_eq!(list_systems(dir.path()).unwrap(), ["HDFS"]);

        let system = read_system(dir.path(), "HDFS").unwrap();
        // The non-matching line is skipped, as logparser does, so LineIds stay aligned.
        assert_eq!(system.contents.len(), 4);
        assert_eq!(system.content_mismatches, 0);
        assert_eq!(system.source, ContentSource::LogFormat);
        assert!(system.original.is_none());

        let mut miner = Miner::new(MinerConfig::default()).unwrap();
        let ids: Vec<_> = system
            .contents
            .iter()
            .map(|line| miner.mine(line, 0).pattern)
            .collect();
        let parsed: Vec<ParsedLine> = ids
            .iter()
            .map(|id| {
                let pattern = miner.pattern(*id).unwrap();
                ParsedLine {
                    pattern: pattern.id.to_string(),
                    template: pattern.template,
                }
            })
            .collect();
        let out = dir.path().join("HDFS.csv");
        write_output(&out, &parsed).unwrap();
        let read_back = read_output(&out).unwrap();
        assert_eq!(read_back.len(), 4);
        assert_eq!(read_back[2].as_ref().unwrap(), &parsed[2]);

        let truth = system.corrected.as_ref().unwrap();
        let accuracy = score(truth, &read_back, Labels::Corrected);
        assert_eq!(accuracy.ga, 1.0);
        assert_eq!(accuracy.fga, 1.0);
        assert_eq!((accuracy.truth_groups, accuracy.parser_groups), (2, 2));
        // `blk_<*>`-style masking differs from the labels only in text: PA/FTA see it.
        assert_eq!(accuracy.pa, 1.0, "{parsed:?}");
    }

    #[test]
    fn missing_lines_and_wrong_groups_lower_the_score() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "HDFS", "_structured_corrected.csv", CORRECTED);
        let truth = read_ground_truth(&system_file(
            dir.path(),
            "HDFS",
            "_structured_corrected.csv",
        ))
        .unwrap();
        let out = dir.path().join("out.csv");
        // Lines 1, 2 and 4 together, line 3 missing from the output.
        fs::write(
            &out,
            "LineId,PatternId,Template\n1,a,PacketResponder <*> for block <*> terminating\n\
             2,a,PacketResponder <*> for block <*> terminating\n\
             4,a,PacketResponder <*> for block <*> terminating\n",
        )
        .unwrap();
        let accuracy = score(&truth, &read_output(&out).unwrap(), Labels::Corrected);
        assert!((accuracy.ga - 0.75).abs() < 1e-12);
        assert!((accuracy.pa - 0.75).abs() < 1e-12);
        assert_eq!(accuracy.parser_groups, 1);
        // FGA: one of one parser group right, one of two truth groups recovered.
        assert!((accuracy.fga - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_system_without_a_shipped_format_uses_the_csv_content() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Unseen", "", "raw lines in an unknown format\n");
        write(
            dir.path(),
            "Unseen",
            "_structured_corrected.csv",
            "LineId,Content,EventId,EventTemplate\n1,\"a, \"\"quoted\"\" b\",E1,a <*> b\n",
        );
        let system = read_system(dir.path(), "Unseen").unwrap();
        assert_eq!(system.source, ContentSource::StructuredCsv);
        assert_eq!(system.contents, ["a, \"quoted\" b"]);
    }

    #[test]
    fn bad_rows_name_the_file_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        fs::write(&path, "LineId,PatternId,Template\n1,a,x\nzero,b,y\n").unwrap();
        let err = read_output(&path).unwrap_err().to_string();
        assert!(err.contains("bad.csv") && err.contains("row 3"), "{err}");
        fs::write(&path, "LineId,Template\n1,x\n").unwrap();
        let err = read_output(&path).unwrap_err().to_string();
        assert!(err.contains("PatternId"), "{err}");
    }
}
