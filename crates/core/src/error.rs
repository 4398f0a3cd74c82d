//! Errors at the two boundaries of the core: bad request input
//! ([`RequestError`]) and a policy set that cannot become active
//! ([`LoadError`]).

use std::fmt;

/// A request the PDP refuses to decide because its input is malformed. The
/// server answers these with `INVALID_ARGUMENT`; they are never an ALLOW.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("unknown operation `{0}`")]
    UnknownOperation(String),
    #[error("unknown resource type `{0}`")]
    UnknownResourceType(String),
    #[error("unknown pattern type `{0}`")]
    UnknownPatternType(String),
    #[error("invalid client address `{0}`")]
    InvalidAddress(String),
    #[error("principal {0} is empty")]
    EmptyPrincipal(&'static str),
    #[error("invalid principal `{0}`: expected `type:name`, such as `User:alice`")]
    InvalidPrincipal(String),
    #[error("invalid principal type `{0}`: it must not contain `:`")]
    InvalidPrincipalType(String),
    #[error("resource name is empty")]
    EmptyResourceName,
    #[error("{what} is {len} bytes long; the limit is {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

/// One problem in a policy directory, with the place it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadProblem {
    /// The file, as named to the loader (`policies/roles.cedar`).
    pub file: String,
    /// 1-based line, or 0 when the problem concerns the file as a whole.
    pub line: usize,
    /// 1-based column (in characters), or 0 with `line`.
    pub column: usize,
    /// Lowercase message; user input in backticks.
    pub message: String,
}

impl fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// A policy set that was refused. It carries every problem found, not only
/// the first, so one `validate` run shows all that needs fixing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// At least one problem.
    pub problems: Vec<LoadProblem>,
}

impl fmt::Display for LoadError {
    /// One problem per line, `file:line:column: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Collects problems while a policy directory is loaded.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<LoadProblem>);

impl Problems {
    /// Records a problem at a byte offset of `text`.
    pub(crate) fn at(&mut self, file: &str, text: &str, offset: usize, message: String) {
        let (line, column) = line_column(text, offset);
        self.0.push(LoadProblem {
            file: file.to_owned(),
            line,
            column,
            message,
        });
    }

    /// Records a problem at a known line and column.
    pub(crate) fn at_line(&mut self, file: &str, line: usize, column: usize, message: String) {
        self.0.push(LoadProblem {
            file: file.to_owned(),
            line,
            column,
            message,
        });
    }

    pub(crate) fn into_result(self) -> Result<(), LoadError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(LoadError { problems: self.0 })
        }
    }
}

/// 1-based line and column (counted in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Cedar's messages start with a lowercase letter already; this keeps ours
/// in the same voice when a message comes from elsewhere (serde, io).
pub(crate) fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) if !chars.as_str().starts_with(char::is_uppercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "ab\ncd\n\u{e9}f";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 1), (1, 2));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 8), (3, 2));
        assert_eq!(line_column(text, 999), (3, 3));
    }

    #[test]
    fn problems_print_as_file_line_column() {
        let err = LoadError {
            problems: vec![LoadProblem {
                file: "policies/roles.cedar".into(),
                line: 12,
                column: 5,
                message: "unexpected token `)`".into(),
            }],
        };
        assert_eq!(
            err.to_string(),
            "policies/roles.cedar:12:5: unexpected token `)`"
        );
    }

    #[test]
    fn first_letter_is_lowered_unless_an_acronym() {
        assert_eq!(lowercase_first("Expected value"), "expected value");
        assert_eq!(lowercase_first("EOF while parsing"), "EOF while parsing");
    }
}
