//! The subset of Python's pickle format that `torch.save` writes (protocol
//! 2), run as a stack machine that can only build data: an allow-list of
//! globals (see [`super::rebuild`]), no code execution, every read checked
//! against the input's length.
//!
//! Values are reference-counted, so memo lookups copy nothing: a hostile
//! pickle cannot grow memory faster than its own length.

use super::nesting::Nesting;
pub(crate) use super::pvalue::PValue;
use super::pvalue::{Global, Object};
use crate::{Error, Result};
use std::cell::RefCell;
use std::rc::Rc;

/// The allow-list: which globals a pickle may name, and what calling one
/// makes. The machine itself knows no global.
pub(crate) trait Globals {
    /// The global `module.name`, or an error if it is not allowed.
    fn global(&self, module: &str, name: &str) -> Result<Global>;
    /// Calls an allowed callable (`REDUCE`).
    fn call(&self, g: Global, args: &[PValue]) -> Result<PValue>;
}

/// Resolves persistent ids (`BINPERSID`) to storages.
pub(crate) trait Persistent {
    /// The storage named by `pid`, a tuple `('storage', type, key, location, numel)`.
    fn load(&mut self, pid: &PValue) -> Result<PValue>;
}

fn err(msg: impl Into<String>) -> Error {
    Error::Serialization(format!("data.pkl: {}", msg.into()))
}

/// A cursor over the pickle's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| err(format!("truncated: {n} bytes wanted at offset {}", self.at)))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A newline-terminated line (the operands of `GLOBAL`).
    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.bytes[self.at..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| err("unterminated line"))?;
        let line = std::str::from_utf8(&rest[..end]).map_err(|_| err("a GLOBAL name is not UTF-8"))?;
        self.at += end + 1;
        Ok(line)
    }

    fn utf8(&mut self, n: usize) -> Result<PValue> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| err("a string is not UTF-8"))?;
        Ok(PValue::Str(Rc::from(s)))
    }
}

/// The machine's stack, with MARK positions.
#[derive(Default)]
struct Stack {
    items: Vec<PValue>,
    marks: Vec<usize>,
}

impl Stack {
    fn pop(&mut self) -> Result<PValue> {
        if self.marks.last().is_some_and(|&m| m >= self.items.len()) {
            return Err(err("pop across a MARK"));
        }
        self.items.pop().ok_or_else(|| err("pop from an empty stack"))
    }

    fn top(&mut self) -> Result<&mut PValue> {
        self.items.last_mut().ok_or_else(|| err("empty stack"))
    }

    /// Pushes a value the machine just made, recording it in `nesting`.
    fn push_made(&mut self, nesting: &mut Nesting, v: PValue) -> Result<()> {
        match &v {
            PValue::Tuple(items) => nesting.made(&v, items.iter())?,
            PValue::List(items) => nesting.made(&v, items.borrow().iter())?,
            _ => nesting.made(&v, [])?,
        }
        self.items.push(v);
        Ok(())
    }

    /// The items since the last MARK, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<PValue>> {
        let m = self.marks.pop().ok_or_else(|| err("no MARK to pop to"))?;
        Ok(self.items.split_off(m))
    }
}

/// Unpickles `bytes`, loading storages through `persistent`, with the
/// globals `globals` allows.
pub(crate) fn unpickle(bytes: &[u8], persistent: &mut dyn Persistent, globals: &dyn Globals) -> Result<PValue> {
    let mut r = Reader { bytes, at: 0 };
    let mut st = Stack::default();
    let mut memo: Vec<Option<PValue>> = Vec::new();
    let mut nesting = Nesting::default();
    let put = |memo: &mut Vec<Option<PValue>>, i: usize, v: PValue, len: usize| -> Result<()> {
        // The memo index is bounded by the pickle's length: every value it
        // can hold took at least one opcode to make.
        if i > len {
            return Err(err(format!("memo index {i} beyond the pickle's {len} bytes")));
        }
        if memo.len() <= i {
            memo.resize(i + 1, None);
        }
        memo[i] = Some(v);
        Ok(())
    };
    let get = |memo: &Vec<Option<PValue>>, i: usize| -> Result<PValue> {
        memo.get(i).cloned().flatten().ok_or_else(|| err(format!("memo slot {i} is empty")))
    };
    loop {
        let op = r.u8()?;
        match op {
            0x80 => {
                // PROTO
                let v = r.u8()?;
                if v > 5 {
                    return Err(err(format!("pickle protocol {v} is not supported")));
                }
            }
            0x95 => {
                // FRAME (protocol 4): a length hint only.
                r.take(8)?;
            }
            b'.' => return st.pop(),
            b'(' => st.marks.push(st.items.len()),
            b')' => st.push_made(&mut nesting, PValue::Tuple(Rc::new(Vec::new())))?,
            b't' => {
                let items = st.pop_mark()?;
                st.push_made(&mut nesting, PValue::Tuple(Rc::new(items)))?;
            }
            0x85..=0x87 => {
                // TUPLE1..TUPLE3
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(st.pop()?);
                }
                items.reverse();
                st.push_made(&mut nesting, PValue::Tuple(Rc::new(items)))?;
            }
            b']' => st.push_made(&mut nesting, PValue::List(Rc::new(RefCell::new(Vec::new()))))?,
            b'l' => {
                let items = st.pop_mark()?;
                st.push_made(&mut nesting, PValue::List(Rc::new(RefCell::new(items))))?;
            }
            b'a' => {
                let v = st.pop()?;
                let list = &*st.top()?;
                let PValue::List(l) = list else { return Err(err("APPEND to a non-list")) };
                nesting.add(list, [&v])?;
                l.borrow_mut().push(v);
            }
            b'e' => {
                let items = st.pop_mark()?;
                let list = &*st.top()?;
                let PValue::List(l) = list else { return Err(err("APPENDS to a non-list")) };
                nesting.add(list, &items)?;
                l.borrow_mut().extend(items);
            }
            b'}' => st.push_made(&mut nesting, PValue::Dict(Rc::new(RefCell::new(Vec::new()))))?,
            b'd' => {
                let items = st.pop_mark()?;
                let d = Rc::new(RefCell::new(pairs(items)?));
                nesting.made(&PValue::Dict(d.clone()), d.borrow().iter().flat_map(|(k, v)| [k, v]))?;
                st.items.push(PValue::Dict(d));
            }
            b's' => {
                let v = st.pop()?;
                let k = st.pop()?;
                let dict = &*st.top()?;
                let PValue::Dict(d) = dict else { return Err(err("SETITEM on a non-dict")) };
                nesting.add(dict, [&k, &v])?;
                d.borrow_mut().push((k, v));
            }
            b'u' => {
                let items = st.pop_mark()?;
                let dict = &*st.top()?;
                let PValue::Dict(d) = dict else { return Err(err("SETITEMS on a non-dict")) };
                nesting.add(dict, &items)?;
                d.borrow_mut().extend(pairs(items)?);
            }
            b'N' => st.items.push(PValue::None),
            0x88 => st.items.push(PValue::Bool(true)),
            0x89 => st.items.push(PValue::Bool(false)),
            b'K' => st.items.push(PValue::Int(r.u8()? as i64)),
            b'M' => st.items.push(PValue::Int(r.u16()? as i64)),
            b'J' => st.items.push(PValue::Int(r.u32()? as i32 as i64)),
            0x8a => {
                // LONG1: a little-endian two's-complement int of n bytes.
                let n = r.u8()? as usize;
                let b = r.take(n)?;
                if n > 8 {
                    return Err(err(format!("an integer of {n} bytes does not fit i64")));
                }
                let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
                buf[..n].copy_from_slice(b);
                st.items.push(PValue::Int(i64::from_le_bytes(buf)));
            }
            b'G' => {
                let b = r.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                st.items.push(PValue::Float(f64::from_be_bytes(a)));
            }
            b'X' => {
                let n = r.u32()? as usize;
                let v = r.utf8(n)?;
                st.items.push(v);
            }
            0x8c => {
                // SHORT_BINUNICODE
                let n = r.u8()? as usize;
                let v = r.utf8(n)?;
                st.items.push(v);
            }
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                st.items.push(PValue::Global(globals.global(module, name)?));
            }
            b'q' => {
                let i = r.u8()? as usize;
                let v = st.top()?.clone();
                put(&mut memo, i, v, bytes.len())?;
            }
            b'r' => {
                let i = r.u32()? as usize;
                let v = st.top()?.clone();
                put(&mut memo, i, v, bytes.len())?;
            }
            0x94 => {
                // MEMOIZE (protocol 4)
                let i = memo.len();
                let v = st.top()?.clone();
                put(&mut memo, i, v, bytes.len())?;
            }
            b'h' => {
                let i = r.u8()? as usize;
                st.items.push(get(&memo, i)?);
            }
            b'j' => {
                let i = r.u32()? as usize;
                st.items.push(get(&memo, i)?);
            }
            b'R' => {
                let args = st.pop()?;
                let f = st.pop()?;
                let PValue::Global(g) = f else { return Err(err("REDUCE of a value that is not a callable global")) };
                let PValue::Tuple(args) = args else { return Err(err("REDUCE arguments are not a tuple")) };
                let made = globals.call(g, &args)?;
                nesting.made(&made, args.iter())?;
                st.items.push(made);
            }
            0x81 => {
                // NEWOBJ: an object of a TorchScript class (only allowed
                // classes reach here: `global` refused the others).
                let _args = st.pop()?;
                let class = st.pop()?;
                match class {
                    PValue::Global(g @ (Global::ScriptClass(_) | Global::ModelClass)) => {
                        let state = std::cell::RefCell::new(None);
                        st.push_made(&mut nesting, PValue::Object(Rc::new(Object::Instance { class: g, state })))?;
                    }
                    _ => return Err(err("NEWOBJ of something that is not an allowed class")),
                }
            }
            b'b' => {
                // BUILD: state for the object below: a TorchScript object
                // keeps it; a dict (an OrderedDict's `_metadata`) needs none.
                let state = st.pop()?;
                let object = &*st.top()?;
                match object {
                    PValue::Dict(_) => {}
                    PValue::Object(o) => match &**o {
                        Object::Instance { state: slot, .. } => {
                            nesting.add(object, [&state])?;
                            if slot.replace(Some(state)).is_some() {
                                return Err(err("BUILD twice on one object"));
                            }
                        }
                        _ => return Err(err("BUILD on a tensor or storage")),
                    },
                    _ => return Err(err("BUILD on an object that is not a dict")),
                }
            }
            b'Q' => {
                let pid = st.pop()?;
                let v = persistent.load(&pid)?;
                st.push_made(&mut nesting, v)?;
            }
            b'0' => {
                st.pop()?;
            }
            other => {
                return Err(err(format!("opcode 0x{other:02x} at offset {} is not supported", r.at - 1)));
            }
        }
    }
}

/// Alternating keys and values into pairs.
fn pairs(items: Vec<PValue>) -> Result<Vec<(PValue, PValue)>> {
    if !items.len().is_multiple_of(2) {
        return Err(err("a dict with a key but no value"));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}
