//! Reading `ops.yaml`: a list of `- func: <schema>` entries with an
//! optional `doc:` and `tolerance:`, every error naming its line.

use crate::{parse_schema, OpSchema, Tolerance};
use std::fmt;

/// One operator declared in `ops.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpsYamlEntry {
    /// The parsed schema.
    pub schema: OpSchema,
    /// The schema as written.
    pub func: String,
    /// The `doc:` text (may be empty).
    pub doc: String,
    /// The `tolerance:` text (`exact` when absent).
    pub tolerance: String,
    /// 1-based line of the `func:` value.
    pub line: usize,
}

/// An `ops.yaml` error, with the 1-based line it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsYamlError {
    /// The line in the file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for OpsYamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ops.yaml:{}: {}", self.line, self.message)
    }
}

impl std::error::Error for OpsYamlError {}

/// Collects (event, line) pairs from the YAML parser.
struct EventLog(Vec<(yaml_rust2::parser::Event, usize)>);

impl yaml_rust2::parser::MarkedEventReceiver for EventLog {
    fn on_event(&mut self, ev: yaml_rust2::parser::Event, mark: yaml_rust2::scanner::Marker) {
        self.0.push((ev, mark.line()));
    }
}

/// Parses `ops.yaml`: a list of mappings with a `func:` schema and an
/// optional `doc:`. Every error names its line.
pub fn parse_ops_yaml(text: &str) -> Result<Vec<OpsYamlEntry>, OpsYamlError> {
    use yaml_rust2::parser::{Event, Parser};
    let mut log = EventLog(Vec::new());
    Parser::new_from_str(text)
        .load(&mut log, false)
        .map_err(|e| OpsYamlError { line: e.marker().line(), message: e.info().to_string() })?;

    let err = |line: usize, message: String| OpsYamlError { line, message };
    let mut events = log.0.into_iter().filter(|(e, _)| {
        !matches!(e, Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd | Event::Nothing)
    });
    let mut entries: Vec<OpsYamlEntry> = Vec::new();
    match events.next() {
        None => return Ok(entries),
        Some((Event::SequenceStart(..), _)) => {}
        Some((_, line)) => return Err(err(line, "ops.yaml must be a list of `- func: ...` entries".into())),
    }
    loop {
        let (ev, line) = events.next().ok_or_else(|| err(0, "unexpected end of file".into()))?;
        match ev {
            Event::SequenceEnd => break,
            Event::MappingStart(..) => {}
            _ => return Err(err(line, "each entry must be a mapping with `func:` (and optionally `doc:`)".into())),
        }
        let entry_line = line;
        let mut func: Option<(String, usize)> = None;
        let mut doc = String::new();
        let mut tolerance = (String::from("exact"), entry_line);
        loop {
            let (ev, line) = events.next().ok_or_else(|| err(entry_line, "unexpected end of file".into()))?;
            let key = match ev {
                Event::MappingEnd => break,
                Event::Scalar(k, ..) => k,
                _ => return Err(err(line, "keys must be plain strings".into())),
            };
            let (value, vline) = match events.next() {
                Some((Event::Scalar(v, ..), l)) => (v, l),
                Some((_, l)) => return Err(err(l, format!("`{key}` must be a string"))),
                None => return Err(err(line, "unexpected end of file".into())),
            };
            match key.as_str() {
                "func" => func = Some((value, vline)),
                "doc" => doc = value,
                "tolerance" => tolerance = (value, vline),
                other => {
                    return Err(err(line, format!("unknown key `{other}` (expected `func`, `doc` or `tolerance`)")))
                }
            }
        }
        let (func, fline) = func.ok_or_else(|| err(entry_line, "entry has no `func:`".into()))?;
        let schema = parse_schema(&func).map_err(|m| err(fline, m))?;
        if let Some(prev) = entries.iter().find(|e| e.schema.name == schema.name) {
            return Err(err(
                fline,
                format!("duplicate operator `{}` (first declared on line {})", schema.name, prev.line),
            ));
        }
        Tolerance::parse(&tolerance.0).map_err(|m| err(tolerance.1, m))?;
        entries.push(OpsYamlEntry { schema, func, doc, tolerance: tolerance.0, line: fline });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_yaml_errors_name_the_line() -> Result<(), Box<dyn std::error::Error>> {
        let ok = "# ops\n- func: relu(Tensor self) -> Tensor\n  doc: Rectifier.\n- func: dequantize(Tensor self) -> Tensor\n";
        let entries = parse_ops_yaml(ok)?;
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].line, 4);
        assert_eq!(entries[0].doc, "Rectifier.");

        let bad_type = "- func: relu(Tensor self) -> Tensor\n- func: dequantize(Tensr self) -> Tensor\n";
        let e = parse_ops_yaml(bad_type).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("Tensr"));

        let dup = "- func: relu(Tensor self) -> Tensor\n\n- func: relu(Tensor x) -> Tensor\n";
        let e = parse_ops_yaml(dup).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("duplicate"));

        let no_arrow = "- func: relu(Tensor self) -> Tensor\n- func: relu2(Tensor self) Tensor\n";
        let e = parse_ops_yaml(no_arrow).unwrap_err();
        assert_eq!((e.line, e.message.contains("->")), (2, true));

        let bad_key = "- func: relu(Tensor self) -> Tensor\n  dox: typo\n";
        assert_eq!(parse_ops_yaml(bad_key).unwrap_err().line, 2);

        let bad_tolerance = "- func: relu(Tensor self) -> Tensor\n  tolerance: steps -1\n";
        assert_eq!(parse_ops_yaml(bad_tolerance).unwrap_err().line, 2);
        assert_eq!(Tolerance::parse("abs 1e-4 rel 0")?, Tolerance::Float { abs: 1e-4, rel: 0.0 });

        let bad_yaml = "- func: relu(Tensor self) -> Tensor\n  doc: [unclosed\n";
        assert!(parse_ops_yaml(bad_yaml).is_err());
        Ok(())
    }
}
