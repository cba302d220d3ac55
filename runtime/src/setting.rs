//! A process-wide choice (the engine, the ISA cap, the kernel of narrow
//! GEMM panels): the value set in code, else the one an environment
//! variable names, read once, else a default.
//!
//! The value set in code is an atomic index, so reading the choice on a
//! hot path costs one relaxed load. An environment variable has no caller
//! to return an error to: an unknown value is reported on stderr once and
//! ignored.

use crate::error::Result;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// No value set in code: the environment variable decides.
const UNSET: u8 = u8::MAX;

/// One process-wide choice among `values` (at most 255 of them).
pub struct ProcessSetting<T: 'static> {
    /// The environment variable read when no value is set in code.
    var: &'static str,
    /// Every value; a value set in code is stored as its index here.
    values: &'static [T],
    /// The value when neither code nor the variable chose one.
    default: T,
    /// Reads the variable's value (trimmed; its error is printed).
    parse: fn(&str) -> Result<T>,
    /// What the default means, for the message on an unknown value.
    default_note: &'static str,
    set: AtomicU8,
    env: OnceLock<Option<T>>,
}

impl<T: Copy + PartialEq + Send + Sync + 'static> ProcessSetting<T> {
    /// A setting read from `var` with `parse`, among `values`, that is
    /// `default` unless chosen; `default_note` ends the message printed
    /// for an unknown value ("using exact").
    pub const fn new(
        var: &'static str,
        values: &'static [T],
        default: T,
        parse: fn(&str) -> Result<T>,
        default_note: &'static str,
    ) -> Self {
        ProcessSetting { var, values, default, parse, default_note, set: AtomicU8::new(UNSET), env: OnceLock::new() }
    }

    /// The value in force: the last [`set`](Self::set), else the
    /// environment variable's, else the default.
    pub fn get(&self) -> T {
        match self.set.load(Ordering::Relaxed) {
            UNSET => self.env_value().unwrap_or(self.default),
            i => self.values.get(usize::from(i)).copied().unwrap_or(self.default),
        }
    }

    /// Sets the value for the whole process, over the environment
    /// variable; `None` returns to the variable's (or the default).
    pub fn set(&self, value: Option<T>) {
        let index = value.and_then(|v| self.values.iter().position(|&x| x == v));
        let code = index.and_then(|i| u8::try_from(i).ok()).filter(|&i| i != UNSET).unwrap_or(UNSET);
        self.set.store(code, Ordering::Relaxed);
    }

    /// The environment variable's value, read and parsed once.
    fn env_value(&self) -> Option<T> {
        *self.env.get_or_init(|| {
            let v = std::env::var(self.var).ok()?;
            if v.trim().is_empty() {
                return None;
            }
            match (self.parse)(v.trim()) {
                Ok(value) => Some(value),
                Err(e) => {
                    eprintln!("qtensor: {e}; {}", self.default_note);
                    None
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Colour {
        Red,
        Blue,
    }

    fn parse(s: &str) -> Result<Colour> {
        match s {
            "red" => Ok(Colour::Red),
            "blue" => Ok(Colour::Blue),
            other => Err(Error::invalid("QTENSOR_TEST_COLOUR", format!("unknown colour `{other}`"))),
        }
    }

    #[test]
    fn code_then_variable_then_default() {
        static UNSET_VAR: ProcessSetting<Colour> =
            ProcessSetting::new("QTENSOR_TEST_NO_SUCH_VARIABLE", &[Colour::Red, Colour::Blue], Colour::Red, parse, "");
        assert_eq!(UNSET_VAR.get(), Colour::Red);
        UNSET_VAR.set(Some(Colour::Blue));
        assert_eq!(UNSET_VAR.get(), Colour::Blue);
        UNSET_VAR.set(None);
        assert_eq!(UNSET_VAR.get(), Colour::Red);
    }

    #[test]
    fn the_variable_is_trimmed_and_an_unknown_value_ignored() {
        static SET_VAR: ProcessSetting<Colour> =
            ProcessSetting::new("QTENSOR_TEST_COLOUR_BLUE", &[Colour::Red, Colour::Blue], Colour::Red, parse, "");
        static BAD_VAR: ProcessSetting<Colour> =
            ProcessSetting::new("QTENSOR_TEST_COLOUR_BAD", &[Colour::Red, Colour::Blue], Colour::Red, parse, "");
        // Names no other test reads.
        std::env::set_var("QTENSOR_TEST_COLOUR_BLUE", " blue ");
        std::env::set_var("QTENSOR_TEST_COLOUR_BAD", "green");
        assert_eq!(SET_VAR.get(), Colour::Blue);
        assert_eq!(BAD_VAR.get(), Colour::Red);
        SET_VAR.set(Some(Colour::Red));
        assert_eq!(SET_VAR.get(), Colour::Red);
    }

    #[test]
    fn a_value_outside_the_list_is_no_choice() {
        static ONLY_RED: ProcessSetting<Colour> =
            ProcessSetting::new("QTENSOR_TEST_NO_SUCH_VARIABLE", &[Colour::Red], Colour::Red, parse, "");
        ONLY_RED.set(Some(Colour::Blue));
        assert_eq!(ONLY_RED.get(), Colour::Red);
    }
}
