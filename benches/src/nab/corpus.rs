//! Reading a NAB directory (`data/<category>/<file>.csv`, `labels/combined_windows.json`,
//! `config/profiles.json`) and writing results in NAB's layout
//! (`OUT/<category>/<detector>_<file>.csv`, columns `timestamp,value,anomaly_score`).
//!
//! Window edges are timestamps; they are mapped to the first row carrying that exact
//! timestamp (`SCORING.md` §1: no edge falls on a repeated timestamp).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use super::scorer::CostProfile;

/// Errors while reading or writing a NAB directory.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A data row is malformed.
    #[error("{path}:{line}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A JSON file does not have the expected shape.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A window edge matches no row of its file.
    #[error("{file}: window edge {timestamp} matches no row")]
    WindowEdge {
        /// The data file (relative path).
        file: String,
        /// The unmatched timestamp.
        timestamp: String,
    },
}

/// One data file of the corpus.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Relative path as the labels name it, e.g. `realKnownCause/nyc_taxi.csv`.
    pub relative: String,
    /// The category folder.
    pub category: String,
    /// The file name (`nyc_taxi.csv`).
    pub file_name: String,
    /// Timestamps as written in the file (`YYYY-MM-DD HH:MM:SS`).
    pub timestamps: Vec<String>,
    /// Seconds since the Unix epoch for each row (the detector's clock).
    pub epoch_seconds: Vec<i64>,
    /// The values.
    pub values: Vec<f64>,
    /// Labelled windows as inclusive row ranges, sorted.
    pub windows: Vec<(usize, usize)>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NabError + '_ {
    move |source| NabError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS` (optionally with a fractional part, as in the labels) to
/// seconds since the Unix epoch, UTC.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let main = text.split('.').next()?;
    let parsed = chrono::NaiveDateTime::parse_from_str(main, "%Y-%m-%d %H:%M:%S").ok()?;
    Some(parsed.and_utc().timestamp())
}

/// The rows of one `timestamp,value` file.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Timestamps as written.
    pub timestamps: Vec<String>,
    /// The same as seconds since the Unix epoch.
    pub epoch_seconds: Vec<i64>,
    /// The values.
    pub values: Vec<f64>,
}

/// Reads a `timestamp,value` CSV with a header line.
pub fn read_series(path: &Path) -> Result<Series, NabError> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    let mut timestamps = Vec::new();
    let mut epoch = Vec::new();
    let mut values = Vec::new();
    for (index, line) in text.lines().enumerate().skip(1) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |message: &str| NabError::Csv {
            path: path.to_path_buf(),
            line: index + 1,
            message: message.to_string(),
        };
        let (stamp, value) = line
            .split_once(',')
            .ok_or_else(|| bad("expected timestamp,value"))?;
        let seconds = parse_timestamp(stamp).ok_or_else(|| bad("bad timestamp"))?;
        let value: f64 = value.trim().parse().map_err(|_| bad("bad value"))?;
        timestamps.push(stamp.trim().to_string());
        epoch.push(seconds);
        values.push(value);
    }
    Ok(Series {
        timestamps,
        epoch_seconds: epoch,
        values,
    })
}

fn read_json(path: &Path) -> Result<serde_json::Value, NabError> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    serde_json::from_str(&text).map_err(|e| NabError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Reads the cost profiles from `config/profiles.json`, in a stable order.
pub fn read_profiles(path: &Path) -> Result<BTreeMap<String, CostProfile>, NabError> {
    let json = read_json(path)?;
    let bad = |message: String| NabError::Json {
        path: path.to_path_buf(),
        message,
    };
    let object = json
        .as_object()
        .ok_or_else(|| bad("expected an object".into()))?;
    let mut profiles = BTreeMap::new();
    for (name, profile) in object {
        let weight = |key: &str| {
            profile["CostMatrix"][key]
                .as_f64()
                .ok_or_else(|| bad(format!("{name}: missing CostMatrix.{key}")))
        };
        profiles.insert(
            name.clone(),
            CostProfile {
                tp_weight: weight("tpWeight")?,
                fp_weight: weight("fpWeight")?,
                fn_weight: weight("fnWeight")?,
            },
        );
    }
    Ok(profiles)
}

/// Reads every file of `DIR/data` that `DIR/labels/combined_windows.json` lists, with its
/// windows mapped to rows. Files are sorted by relative path.
pub fn read_corpus(dir: &Path) -> Result<Vec<DataFile>, NabError> {
    let labels_path = dir.join("labels/combined_windows.json");
    let labels = read_json(&labels_path)?;
    let object = labels.as_object().ok_or_else(|| NabError::Json {
        path: labels_path.clone(),
        message: "expected an object".into(),
    })?;
    let mut files = Vec::new();
    for (relative, windows) in object {
        let (category, file_name) = relative.split_once('/').ok_or_else(|| NabError::Json {
            path: labels_path.clone(),
            message: format!("{relative}: expected <category>/<file>"),
        })?;
        let path = dir.join("data").join(relative);
        let Series {
            timestamps,
            epoch_seconds,
            values,
        } = read_series(&path)?;
        let mut rows = Vec::new();
        let list = windows.as_array().ok_or_else(|| NabError::Json {
            path: labels_path.clone(),
            message: format!("{relative}: expected a list of windows"),
        })?;
        for window in list {
            let edge = |k: usize| -> Result<usize, NabError> {
                let text = window[k].as_str().ok_or_else(|| NabError::Json {
                    path: labels_path.clone(),
                    message: format!("{relative}: window edges must be strings"),
                })?;
                let wanted = parse_timestamp(text);
                epoch_seconds
                    .iter()
                    .position(|&t| Some(t) == wanted)
                    .ok_or_else(|| NabError::WindowEdge {
                        file: relative.clone(),
                        timestamp: text.to_string(),
                    })
            };
            rows.push((edge(0)?, edge(1)?));
        }
        rows.sort_unstable();
        files.push(DataFile {
            relative: relative.clone(),
            category: category.to_string(),
            file_name: file_name.to_string(),
            timestamps,
            epoch_seconds,
            values,
            windows: rows,
        });
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(files)
}

/// Writes `OUT/<category>/<detector>_<file>.csv` with `timestamp,value,anomaly_score`.
pub fn write_results(
    out: &Path,
    detector: &str,
    file: &DataFile,
    scores: &[f64],
) -> Result<PathBuf, NabError> {
    let folder = out.join(&file.category);
    fs::create_dir_all(&folder).map_err(io_error(&folder))?;
    let path = folder.join(format!("{detector}_{}", file.file_name));
    let mut text = String::with_capacity(file.values.len() * 40);
    text.push_str("timestamp,value,anomaly_score\n");
    for ((stamp, value), score) in file.timestamps.iter().zip(&file.values).zip(scores) {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{stamp},{value},{score}");
    }
    fs::write(&path, text).map_err(io_error(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_with_and_without_fraction() {
        assert_eq!(parse_timestamp("1970-01-01 00:01:00"), Some(60));
        assert_eq!(parse_timestamp("1970-01-01 00:01:00.000000"), Some(60));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn reads_a_tiny_corpus_and_maps_windows_to_rows() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("data/cat")).unwrap();
        fs::create_dir_all(dir.path().join("labels")).unwrap();
        let mut csv = String::from("timestamp,value\n");
        for i in 0..10 {
            csv.push_str(&format!("2014-01-01 00:{i:02}:00,{i}.5\n"));
        }
        fs::write(dir.path().join("data/cat/a.csv"), csv).unwrap();
        fs::write(
            dir.path().join("labels/combined_windows.json"),
            r#"{"cat/a.csv": [["2014-01-01 00:03:00.000000", "2014-01-01 00:05:00.000000"]]}"#,
        )
        .unwrap();
        let corpus = read_corpus(dir.path()).unwrap();
        assert_eq!(corpus.len(), 1);
        assert_eq!(corpus[0].windows, vec![(3, 5)]);
        assert_eq!(corpus[0].values[2], 2.5);
        let out = dir.path().join("out");
        let path = write_results(&out, "det", &corpus[0], &[0.0; 10]).unwrap();
        assert!(path.ends_with("cat/det_a.csv"));
        let written = fs::read_to_string(path).unwrap();
        assert!(written.starts_with("timestamp,value,anomaly_score\n2014-01-01 00:00:00,0.5,0\n"));
    }

    #[test]
    fn an_unmatched_window_edge_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("data/cat")).unwrap();
        fs::create_dir_all(dir.path().join("labels")).unwrap();
        fs::write(
            dir.path().join("data/cat/a.csv"),
            "timestamp,value\n2014-01-01 00:00:00,1\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("labels/combined_windows.json"),
            r#"{"cat/a.csv": [["2015-01-01 00:00:00", "2015-01-01 00:00:00"]]}"#,
        )
        .unwrap();
        assert!(matches!(
            read_corpus(dir.path()),
            Err(NabError::WindowEdge { .. })
        ));
    }
}
