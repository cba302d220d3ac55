//! Element types: float, plain integer and quantized.

use std::fmt;

/// The element type of a tensor.
///
/// Quantized dtypes (`QUInt8`, `QInt8`, `QInt16`, `QInt32`, `QUInt4x2`) store
/// integers and carry a [`Quantizer`](crate::Quantizer); the others are plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DType {
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Float64,
    /// 64-bit signed integer.
    Int64,
    /// 32-bit signed integer.
    Int32,
    /// 16-bit signed integer.
    Int16,
    /// 8-bit signed integer.
    Int8,
    /// 8-bit unsigned integer.
    UInt8,
    /// Quantized unsigned 8-bit, stored as `u8`.
    QUInt8,
    /// Quantized signed 8-bit, stored as `i8`.
    QInt8,
    /// Quantized signed 16-bit, stored as `i16`.
    QInt16,
    /// Quantized signed 32-bit, stored as `i32`.
    QInt32,
    /// Quantized unsigned 4-bit, two values packed in a byte (low nibble first).
    QUInt4x2,
}

/// How the elements of a dtype are laid out in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageType {
    /// `f32` elements.
    F32,
    /// `f64` elements.
    F64,
    /// `i64` elements.
    I64,
    /// `i32` elements.
    I32,
    /// `i16` elements.
    I16,
    /// `i8` elements.
    I8,
    /// `u8` elements.
    U8,
    /// Two 4-bit values per `u8`.
    U4x2,
}

impl StorageType {
    /// The Rust element type that reads this storage (`u8` for `U4x2`).
    pub const fn rust_name(self) -> &'static str {
        match self {
            StorageType::F64 => "f64",
            StorageType::F32 => "f32",
            StorageType::I64 => "i64",
            StorageType::I32 => "i32",
            StorageType::I16 => "i16",
            StorageType::I8 => "i8",
            StorageType::U8 | StorageType::U4x2 => "u8",
        }
    }

    /// Bytes per stored element (a packed byte for `U4x2`).
    pub const fn size_of(self) -> usize {
        match self {
            StorageType::F64 | StorageType::I64 => 8,
            StorageType::F32 | StorageType::I32 => 4,
            StorageType::I16 => 2,
            StorageType::I8 | StorageType::U8 | StorageType::U4x2 => 1,
        }
    }
}

impl DType {
    /// Every dtype, in a fixed order (used for dispatch tables).
    pub const ALL: [DType; 12] = [
        DType::Float32,
        DType::Float64,
        DType::Int64,
        DType::Int32,
        DType::Int16,
        DType::Int8,
        DType::UInt8,
        DType::QUInt8,
        DType::QInt8,
        DType::QInt16,
        DType::QInt32,
        DType::QUInt4x2,
    ];

    /// The quantized dtypes with a kernel-friendly one-value-per-element layout.
    pub const QUANTIZED: [DType; 4] = [DType::QUInt8, DType::QInt8, DType::QInt16, DType::QInt32];

    /// Position in [`DType::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// PyTorch's name, without the `torch.` prefix (`quint8`, `float32`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Int64 => "int64",
            DType::Int32 => "int32",
            DType::Int16 => "int16",
            DType::Int8 => "int8",
            DType::UInt8 => "uint8",
            DType::QUInt8 => "quint8",
            DType::QInt8 => "qint8",
            DType::QInt16 => "qint16",
            DType::QInt32 => "qint32",
            DType::QUInt4x2 => "quint4x2",
        }
    }

    /// The dtype of PyTorch's `ScalarType` code (see [`DType::torch_code`]).
    pub fn from_torch_code(code: i64) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.torch_code() == Some(code))
    }

    /// PyTorch's `ScalarType` code of this dtype (what TorchScript files
    /// write for dtypes: 6 float32, 12 qint8, 13 quint8); `None` for
    /// qtensor's qint16, which PyTorch lacks.
    pub const fn torch_code(self) -> Option<i64> {
        Some(match self {
            DType::UInt8 => 0,
            DType::Int8 => 1,
            DType::Int16 => 2,
            DType::Int32 => 3,
            DType::Int64 => 4,
            DType::Float32 => 6,
            DType::Float64 => 7,
            DType::QInt8 => 12,
            DType::QUInt8 => 13,
            DType::QInt32 => 14,
            DType::QUInt4x2 => 16,
            _ => return None,
        })
    }

    /// Parses a name as printed by [`DType::name`]; `float`, `double`, `long`,
    /// `int`, `short` and `half`-less PyTorch aliases are accepted too.
    pub fn from_name(name: &str) -> Option<DType> {
        let name = name.strip_prefix("torch.").unwrap_or(name);
        Some(match name {
            "float32" | "float" => DType::Float32,
            "float64" | "double" => DType::Float64,
            "int64" | "long" => DType::Int64,
            "int32" | "int" => DType::Int32,
            "int16" | "short" => DType::Int16,
            "int8" => DType::Int8,
            "uint8" => DType::UInt8,
            "quint8" => DType::QUInt8,
            "qint8" => DType::QInt8,
            "qint16" => DType::QInt16,
            "qint32" => DType::QInt32,
            "quint4x2" => DType::QUInt4x2,
            _ => return None,
        })
    }

    /// True for the quantized dtypes.
    pub const fn is_quantized(self) -> bool {
        matches!(self, DType::QUInt8 | DType::QInt8 | DType::QInt16 | DType::QInt32 | DType::QUInt4x2)
    }

    /// True for `float32` and `float64`.
    pub const fn is_float(self) -> bool {
        matches!(self, DType::Float32 | DType::Float64)
    }

    /// True for the plain integer dtypes.
    pub const fn is_integer(self) -> bool {
        matches!(self, DType::Int64 | DType::Int32 | DType::Int16 | DType::Int8 | DType::UInt8)
    }

    /// How elements are stored.
    pub const fn storage_type(self) -> StorageType {
        match self {
            DType::Float32 => StorageType::F32,
            DType::Float64 => StorageType::F64,
            DType::Int64 => StorageType::I64,
            DType::Int32 | DType::QInt32 => StorageType::I32,
            DType::Int16 | DType::QInt16 => StorageType::I16,
            DType::Int8 | DType::QInt8 => StorageType::I8,
            DType::UInt8 | DType::QUInt8 => StorageType::U8,
            DType::QUInt4x2 => StorageType::U4x2,
        }
    }

    /// The range of the stored integer for quantized (and integer) dtypes.
    /// `None` for floats.
    pub const fn int_range(self) -> Option<(i64, i64)> {
        match self {
            DType::QUInt8 | DType::UInt8 => Some((0, 255)),
            DType::QInt8 | DType::Int8 => Some((-128, 127)),
            DType::QInt16 | DType::Int16 => Some((-32768, 32767)),
            DType::QInt32 | DType::Int32 => Some((i32::MIN as i64, i32::MAX as i64)),
            DType::QUInt4x2 => Some((0, 15)),
            DType::Int64 => Some((i64::MIN, i64::MAX)),
            DType::Float32 | DType::Float64 => None,
        }
    }

    /// The integer dtype that holds a quantized dtype's values (`quint8` -> `uint8`).
    pub const fn underlying_int(self) -> Option<DType> {
        match self {
            DType::QUInt8 | DType::QUInt4x2 => Some(DType::UInt8),
            DType::QInt8 => Some(DType::Int8),
            DType::QInt16 => Some(DType::Int16),
            DType::QInt32 => Some(DType::Int32),
            _ => None,
        }
    }

    /// The quantized dtype whose values an integer dtype holds (`uint8` -> `quint8`).
    pub const fn quantized_counterpart(self) -> Option<DType> {
        match self {
            DType::UInt8 => Some(DType::QUInt8),
            DType::Int8 => Some(DType::QInt8),
            DType::Int16 => Some(DType::QInt16),
            DType::Int32 => Some(DType::QInt32),
            _ => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
