//! [`OpName`]: an operator's full name as a typed constant, so that a
//! kernel registered for a misspelt op fails to compile instead of being
//! rejected at run time.

/// The full name of a declared operator (`quantized::conv2d.new`).
///
/// Every op in `ops.yaml` has one in [`crate::ops`] (`ops::RELU`,
/// `ops::quantized::ADD`, `ops::quantized::CONV2D_NEW`), and
/// [`declare_op!`](crate::declare_op) defines one for a plugin's op.
/// [`register_kernel!`](crate::register_kernel) takes only an `OpName`, not
/// a string, so every registration names an op that some crate declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpName(&'static str);

impl OpName {
    /// The name a schema string declares: everything before its `(`
    /// (`myplugin::clamp_q` for `myplugin::clamp_q(Tensor self) -> Tensor`).
    /// [`declare_op!`](crate::declare_op) evaluates it at compile time. A
    /// string without `(` is taken whole, and the registry then refuses its
    /// declaration as a malformed schema.
    pub const fn of_schema(schema: &'static str) -> OpName {
        let bytes = schema.as_bytes();
        let mut end = 0;
        while end < bytes.len() && bytes[end] != b'(' {
            end += 1;
        }
        // `(` is ASCII, so `end` is a character boundary.
        let (name, _) = schema.split_at(end);
        OpName(name)
    }

    /// A name the compiler cannot check, for an op declared at run time
    /// with [`Dispatcher::declare_op`](crate::Dispatcher::declare_op): the
    /// registry still refuses a kernel for an op that nothing declared.
    pub const fn unchecked(name: &'static str) -> OpName {
        OpName(name)
    }

    /// The name as a string.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::ops::Deref for OpName {
    type Target = str;

    /// The name, so that an `OpName` goes wherever a `&str` name does
    /// (`dispatcher().call(&ops::RELU, ...)`).
    fn deref(&self) -> &str {
        self.0
    }
}

impl AsRef<str> for OpName {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl From<OpName> for String {
    /// The name, for error messages that own their op name.
    fn from(name: OpName) -> String {
        name.0.to_string()
    }
}

impl std::fmt::Display for OpName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::OpName;

    #[test]
    fn a_schema_names_its_op() {
        const N: OpName = OpName::of_schema("myplugin::clamp_q.out(Tensor self) -> Tensor");
        assert_eq!(N.as_str(), "myplugin::clamp_q.out");
        assert_eq!(&*N, "myplugin::clamp_q.out");
        assert_eq!(N.to_string(), "myplugin::clamp_q.out");
        assert_eq!(OpName::of_schema("no_parenthesis").as_str(), "no_parenthesis");
    }
}
