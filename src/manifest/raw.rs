//! The raw manifest model: the YAML as the user wrote it, every value with its location.
//!
//! Owns: the shape of each kind (field names, types, which are required) — declared once with
//! [`raw_struct!`], which yields both the converter from a [`Node`] (reporting every unknown
//! field, wrong type and missing field) and the JSON Schema (`ovhform schema`), so the two cannot
//! disagree. Must not touch: semantic rules (`validate.rs`), file contents and environment
//! (`build.rs`).

use std::borrow::Cow;
use std::path::PathBuf;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::diag::{Code, Diag, Source};
use super::node::{Loc, Node, Value};

/// A file the loader read (or tried to): diagnostics point into it.
#[derive(Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub source: Option<Source>,
}

/// Collects diagnostics while converting and validating.
pub struct Sink<'a> {
    pub files: &'a [SourceFile],
    pub diags: Vec<Diag>,
    /// Errors among `diags` (kept as a count: rules compare it before and after a step).
    errors: usize,
}

impl<'a> Sink<'a> {
    pub fn new(files: &'a [SourceFile]) -> Sink<'a> {
        Sink {
            files,
            diags: Vec::new(),
            errors: 0,
        }
    }

    /// A diagnostic at a node's location.
    pub fn at(&self, code: Code, loc: Loc, message: impl Into<String>) -> Diag {
        let mut d = Diag::new(code, message);
        if let Some(f) = self.files.get(loc.file as usize) {
            d.file = Some(f.path.clone());
            d.line = loc.line;
            d.column = loc.column;
            if let Some(src) = &f.source
                && loc.line > 0
            {
                let text: &str = src.inner();
                let offset = if loc.offset == 0 && (loc.line, loc.column) != (1, 1) {
                    super::diag::offset_of(text, loc.line, loc.column)
                } else {
                    loc.offset
                };
                let span = super::diag::clamp_span(text, offset, loc.len);
                // The line the snippet shows, not the parser's, which also counts lone CRs
                // (the parser's column stays otherwise: this text is masked, one `?` a byte).
                let (line, column) = super::diag::line_col(text, span.0);
                if line != d.line {
                    (d.line, d.column) = (line, column);
                }
                d.source = Some(src.clone());
                d.span = Some(span);
            }
        }
        d
    }

    pub fn push(&mut self, d: Diag) {
        self.errors += usize::from(d.is_error());
        self.diags.push(d);
    }

    pub fn extend(&mut self, ds: Vec<Diag>) {
        ds.into_iter().for_each(|d| self.push(d));
    }

    pub fn error(&mut self, code: Code, loc: Loc, message: impl Into<String>) {
        let d = self.at(code, loc, message);
        self.push(d);
    }

    pub fn error_hint(
        &mut self,
        code: Code,
        loc: Loc,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let d = self.at(code, loc, message).hint(hint);
        self.push(d);
    }

    pub fn error_count(&self) -> usize {
        self.errors
    }
}

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// Conversion from the spanned tree, reporting problems to the sink. `None` = the value was
/// unusable and an error has been reported.
pub trait FromNode: Sized {
    fn from_node(node: &Node, sink: &mut Sink) -> Option<Self>;
    /// The value of the field when it is absent; `None` = the field is required.
    fn absent() -> Option<Self> {
        None
    }
}

fn wrong_type(node: &Node, sink: &mut Sink, expected: &str) {
    let hint = match (&node.value, expected) {
        (Value::Int(_) | Value::Float(_) | Value::Bool(_), "a string") => {
            "put the value in quotes to make it a string".to_owned()
        }
        _ => format!("give {expected} here"),
    };
    sink.error_hint(
        Code::WrongType,
        node.anchor(),
        format!("expected {expected}, found {}", node.type_name()),
        hint,
    );
}

impl<T: FromNode> FromNode for Sp<T> {
    fn from_node(node: &Node, sink: &mut Sink) -> Option<Self> {
        T::from_node(node, sink).map(|value| Sp {
            value,
            loc: node.anchor(),
        })
    }
}

impl<T: FromNode> FromNode for Option<T> {
    fn from_node(node: &Node, sink: &mut Sink) -> Option<Self> {
        // An explicit null is the same as leaving the field out; in a server manifest it also
        // removes a value its group template would have given.
        if node.is_null() {
            Some(None)
        } else {
            T::from_node(node, sink).map(Some)
        }
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
}

impl FromNode for String {
    fn from_node(node: &Node, sink: &mut Sink) -> Option<Self> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                wrong_type(node, sink, "a string");
                None
            }
        }
    }
}

impl FromNode for bool {
    fn from_node(node: &Node, sink: &mut Sink) -> Option<Self> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                wrong_type(node, sink, "true or false");
                None
            }
        }
    }
}

macro_rules! int_from_node {
    ($($t:ty),*) => {$(
        impl FromNode for $t {
            fn from_node(node: &Node, sink: &mut Sink) -> Option<Self> {
                match node.value {
                    Value::Int(i) => match <$t>::try_from(i) {
                        Ok(v) => Some(v),
                        Err(_) => {
                            sink.error(Code::OutOfRange, node.anchor(), format!("{i} is out of range (0..={})", <$t>::MAX));
                            None
                        }
                    },
                    _ => {
                        wrong_type(node, sink, "an integer");
                        None
                    }
                }
            }
        }
    )*};
}
int_from_node!(u32, u64);

impl<T: FromNode> FromNode for Vec<T> {
    fn from_node(node: &Node, sink: &mut Sink) -> Option<Self> {
        let Value::Seq(items) = &node.value else {
            wrong_type(node, sink, "a list");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match T::from_node(item, sink) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// A string-keyed mapping, keys with their locations, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Map<T>(pub Vec<(Sp<String>, T)>);

impl<T: FromNode> FromNode for Map<T> {
    fn from_node(node: &Node, sink: &mut Sink) -> Option<Self> {
        let Value::Map(entries) = &node.value else {
            wrong_type(node, sink, "a mapping");
            return None;
        };
        let mut out = Vec::with_capacity(entries.len());
        let mut ok = true;
        for (k, v) in entries {
            let Some(key) = Sp::<String>::from_node(k, sink) else {
                ok = false;
                continue;
            };
            match T::from_node(v, sink) {
                Some(v) => out.push((key, v)),
                None => ok = false,
            }
        }
        ok.then_some(Map(out))
    }
}

impl<T: JsonSchema> JsonSchema for Map<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let inner = generator.subschema_for::<T>();
        json_schema!({"type": "object", "additionalProperties": inner})
    }
}

/// Accepts the mapping `T`, or a list holding exactly one (the API's array form); a longer list
/// is the "several disk groups/RAID configs" mistake the API answers with 501.
#[derive(Clone, Debug, PartialEq)]
pub struct One<T>(pub T);

impl<T: FromNode> FromNode for One<T> {
    fn from_node(node: &Node, sink: &mut Sink) -> Option<Self> {
        match &node.value {
            Value::Seq(items) if items.len() == 1 => T::from_node(&items[0], sink).map(One),
            Value::Seq(items) => {
                sink.error(
                    Code::StorageMultipleConfigs,
                    node.anchor(),
                    format!(
                        "{} configurations given; the API accepts exactly one",
                        items.len()
                    ),
                );
                None
            }
            _ => T::from_node(node, sink).map(One),
        }
    }
}

impl<T: JsonSchema> JsonSchema for One<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

impl FromNode for Node {
    fn from_node(node: &Node, _sink: &mut Sink) -> Option<Self> {
        Some(node.clone())
    }
}

/// Levenshtein distance, for "did you mean" on unknown fields (a dozen short names: the
/// quadratic table is nothing).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(!a[i - 1].eq_ignore_ascii_case(&b[j - 1]));
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

pub fn unknown_field(sink: &mut Sink, key: &Node, name: &str, fields: &[&str], what: &str) {
    let best = fields.iter().map(|f| (distance(name, f), *f)).min();
    let hint = match best {
        Some((d, f)) if d <= 3 || f.eq_ignore_ascii_case(name) => format!("did you mean `{f}`?"),
        _ => format!("{what} accepts: {}", fields.join(", ")),
    };
    sink.error_hint(
        Code::UnknownField,
        key.loc,
        format!("unknown field `{name}` in {what}"),
        hint,
    );
}

/// The entries of a mapping node with string keys; reports a wrong type, non-string keys and
/// duplicate keys.
pub fn map_entries<'n>(
    node: &'n Node,
    sink: &mut Sink,
    what: &str,
) -> Option<Vec<(&'n Node, &'n str, &'n Node)>> {
    let Value::Map(entries) = &node.value else {
        wrong_type(node, sink, &format!("a mapping ({what})"));
        return None;
    };
    let mut out: Vec<(&Node, &str, &Node)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let Some(key) = k.as_str() else {
            wrong_type(k, sink, "a string key");
            continue;
        };
        if let Some((first, _, _)) = out.iter().find(|(_, name, _)| *name == key) {
            let msg = format!(
                "key `{key}` appears twice (first at line {})",
                first.loc.line
            );
            sink.error(Code::DuplicateKey, k.loc, msg);
            continue;
        }
        out.push((k, key, v));
    }
    Some(out)
}

/// Declares a raw manifest struct: the struct (deriving its JSON Schema) and its [`FromNode`]
/// impl. Each field is `"yamlName" => rust_name: Type`; `Option<_>` fields are optional.
macro_rules! raw_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident ($what:literal) {
            $(
                $(#[$fmeta:meta])*
                $key:literal => $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        #[derive(Clone, Debug, PartialEq, schemars::JsonSchema)]
        $(#[$meta])*
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $( $(#[$fmeta])* #[serde(rename = $key)] pub $field: $ty, )*
            /// Where the mapping starts.
            #[serde(skip)]
            pub loc: $crate::manifest::node::Loc,
        }

        impl $name {
            /// The YAML field names, in declaration order.
            pub const FIELDS: &'static [&'static str] = &[$($key),*];
        }

        impl $crate::manifest::raw::FromNode for $name {
            fn from_node(node: &$crate::manifest::node::Node, sink: &mut $crate::manifest::raw::Sink) -> Option<Self> {
                let entries = $crate::manifest::raw::map_entries(node, sink, $what)?;
                $( let mut $field: Option<$ty> = None; )*
                let mut seen: Vec<&str> = Vec::new();
                for (k, key, v) in entries {
                    seen.push(key);
                    match key {
                        $( $key => $field = <$ty>::from_node(v, sink), )*
                        other => $crate::manifest::raw::unknown_field(sink, k, other, Self::FIELDS, $what),
                    }
                }
                let mut missing = false;
                $(
                    if !seen.contains(&$key) && <$ty>::absent().is_none() {
                        sink.error(
                            $crate::manifest::diag::Code::MissingField,
                            node.anchor(),
                            format!("missing field `{}` in {}", $key, $what),
                        );
                        missing = true;
                    }
                )*
                if missing {
                    return None;
                }
                $( let $field = match $field { Some(v) => v, None => <$ty>::absent()? }; )*
                Some($name { $( $field, )* loc: node.anchor() })
            }
        }
    };
}

/// Declares a string enum usable in manifests (schema: `enum` of the names).
macro_rules! string_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $( $variant:ident = $s:literal ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
        pub enum $name { $( #[serde(rename = $s)] $variant, )* }

        impl $name {
            pub const NAMES: &'static [&'static str] = &[$($s),*];
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $s, )* }
            }
        }

        impl $crate::manifest::raw::FromNode for $name {
            fn from_node(node: &$crate::manifest::node::Node, sink: &mut $crate::manifest::raw::Sink) -> Option<Self> {
                let s = String::from_node(node, sink)?;
                match s.as_str() {
                    $( $s => Some($name::$variant), )*
                    other => {
                        sink.error_hint(
                            $crate::manifest::diag::Code::InvalidEnum,
                            node.anchor(),
                            format!("`{other}` is not a valid value"),
                            format!("use one of: {}", Self::NAMES.join(", ")),
                        );
                        None
                    }
                }
            }
        }
    };
}

/// Declares a field that must hold one exact string (`apiVersion`, `kind`).
macro_rules! const_string {
    ($name:ident = $s:literal, $code:ident) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name;
        impl $name {
            pub const VALUE: &'static str = $s;
        }
        impl FromNode for $name {
            fn from_node(node: &Node, sink: &mut Sink) -> Option<Self> {
                let s = String::from_node(node, sink)?;
                if s == $s {
                    Some($name)
                } else {
                    sink.error_hint(Code::$code, node.anchor(), format!("`{s}` is not supported here"), format!("write `{}`", $s));
                    None
                }
            }
        }
        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({"type": "string", "const": $s})
            }
        }
    };
}

const_string!(ApiVersionV1 = "ovhform/v1", ApiVersion);
const_string!(KindServer = "Server", UnknownKind);
const_string!(KindServerGroup = "ServerGroup", UnknownKind);
const_string!(KindMaintenanceWindow = "MaintenanceWindow", UnknownKind);

/// A string value the user may write inline or take from elsewhere.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueSource {
    /// Written in the manifest.
    Inline(String),
    /// Read from a file, relative to the manifest; `sensitive` hides it in plans.
    File { path: Sp<String>, sensitive: bool },
    /// Read from the environment when ovhform runs (always secret).
    Env(Sp<String>),
    /// Pre-encoded bytes (checked to decode).
    Base64(Sp<String>),
}

impl FromNode for ValueSource {
    fn from_node(node: &Node, sink: &mut Sink) -> Option<Self> {
        match &node.value {
            Value::Str(s) => Some(ValueSource::Inline(s.clone())),
            Value::Map(_) => {
                let entries = map_entries(node, sink, "a value reference")?;
                const FIELDS: &[&str] = &["file", "sensitive", "env", "base64"];
                let (mut file, mut sensitive, mut env, mut b64) = (None, None, None, None);
                let mut ok = true;
                for (k, key, v) in entries {
                    let slot = match key {
                        "file" => &mut file,
                        "env" => &mut env,
                        "base64" => &mut b64,
                        "sensitive" => {
                            match Sp::<bool>::from_node(v, sink) {
                                Some(b) => sensitive = Some(b),
                                None => ok = false,
                            }
                            continue;
                        }
                        other => {
                            unknown_field(sink, k, other, FIELDS, "a value reference");
                            ok = false;
                            continue;
                        }
                    };
                    match Sp::<String>::from_node(v, sink) {
                        Some(s) => *slot = Some(s),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                match (file, env, b64, sensitive) {
                    (Some(path), None, None, s) => Some(ValueSource::File {
                        path,
                        sensitive: s.map(|s| s.value).unwrap_or(false),
                    }),
                    (None, Some(name), None, None) => Some(ValueSource::Env(name)),
                    (None, None, Some(data), None) => Some(ValueSource::Base64(data)),
                    (None, Some(_), None, Some(s)) | (None, None, Some(_), Some(s)) => {
                        sink.error_hint(
                            Code::ValueSourceInvalid,
                            s.loc,
                            "`sensitive` only applies to `file:`",
                            "`{env: NAME}` values are always secret; remove `sensitive`",
                        );
                        None
                    }
                    _ => {
                        sink.error(
                            Code::ValueSourceInvalid,
                            node.anchor(),
                            "a value reference needs exactly one of `file`, `env`, `base64`",
                        );
                        None
                    }
                }
            }
            _ => {
                wrong_type(
                    node,
                    sink,
                    "a string or {file: PATH} / {env: NAME} / {base64: DATA}",
                );
                None
            }
        }
    }
}

impl JsonSchema for ValueSource {
    fn schema_name() -> Cow<'static, str> {
        "ValueSource".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A string written inline, or read from a file (relative to the manifest), the environment, or given as base64.",
            "anyOf": [
                {"type": "string"},
                {"type": "object", "properties": {
                    "file": {"type": "string", "description": "Path relative to the manifest file."},
                    "sensitive": {"type": "boolean", "description": "Show only a hash and length in plans."}},
                 "required": ["file"], "additionalProperties": false},
                {"type": "object", "properties": {"env": {"type": "string", "description": "Environment variable (always secret)."}},
                 "required": ["env"], "additionalProperties": false},
                {"type": "object", "properties": {"base64": {"type": "string", "description": "Pre-encoded bytes, standard base64."}},
                 "required": ["base64"], "additionalProperties": false}
            ]
        })
    }
}

/// A partition size, normalised to MiB (what the API takes). `0` = fill the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeMiB(pub u64);

const MIB: u64 = 1024 * 1024;

/// The API's layout `size` is a 32-bit integer of MiB (about 2 PiB): anything larger is a typo.
const MAX_SIZE_MIB: u64 = i32::MAX as u64;

impl FromNode for SizeMiB {
    fn from_node(node: &Node, sink: &mut Sink) -> Option<Self> {
        let size = SizeMiB::parse(node, sink)?;
        if size.0 > MAX_SIZE_MIB {
            sink.error_hint(
                Code::SizeInvalid,
                node.anchor(),
                format!("size {} MiB is larger than any disk group", size.0),
                "the API takes at most 2147483647 MiB (about 2 PiB); use 0 to fill the disk",
            );
            return None;
        }
        Some(size)
    }
}

impl SizeMiB {
    fn parse(node: &Node, sink: &mut Sink) -> Option<Self> {
        match &node.value {
            Value::Int(i) => match u64::try_from(*i) {
                Ok(v) => Some(SizeMiB(v)),
                Err(_) => {
                    sink.error(
                        Code::SizeInvalid,
                        node.anchor(),
                        format!("size {i} is negative"),
                    );
                    None
                }
            },
            Value::Str(s) => {
                let t = s.trim();
                if t.chars().all(|c| c.is_ascii_digit()) {
                    sink.error_hint(
                        Code::SizeInvalid,
                        node.anchor(),
                        format!("size \"{t}\" has no unit"),
                        "write a bare integer for MiB (size: 1024) or add a unit (1GiB)",
                    );
                    return None;
                }
                match t.parse::<bytesize::ByteSize>() {
                    Ok(b) if b.as_u64() % MIB == 0 => Some(SizeMiB(b.as_u64() / MIB)),
                    Ok(b) => {
                        sink.error_hint(
                            Code::SizeInvalid,
                            node.anchor(),
                            format!("size `{t}` is {} bytes, not a whole number of MiB", b.as_u64()),
                            "the API takes MiB; use binary units (MiB, GiB, TiB): 1GB is 1000^3 bytes, 1GiB is 1024 MiB",
                        );
                        None
                    }
                    Err(e) => {
                        sink.error(
                            Code::SizeInvalid,
                            node.anchor(),
                            format!("size `{t}` is not a size: {e}"),
                        );
                        None
                    }
                }
            }
            _ => {
                sink.error(
                    Code::SizeInvalid,
                    node.anchor(),
                    format!("expected a size, found {}", node.type_name()),
                );
                None
            }
        }
    }
}

impl JsonSchema for SizeMiB {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Size in MiB (integer) or with a binary unit (`512MiB`, `20GiB`, `2TiB`). 0 = fill the rest of the disk.",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*([KkMmGgTtPp]i?[Bb]?|[Bb])\\s*$"}
            ]
        })
    }
}

/// A node kept as-is (a server spec, merged with templates before it is converted), whose
/// schema is that of `T`.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeOf<T>(pub Node, std::marker::PhantomData<T>);

impl<T> NodeOf<T> {
    pub fn new(node: Node) -> NodeOf<T> {
        NodeOf(node, std::marker::PhantomData)
    }
}

impl<T> FromNode for NodeOf<T> {
    fn from_node(node: &Node, _sink: &mut Sink) -> Option<Self> {
        Some(NodeOf(node.clone(), std::marker::PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for NodeOf<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

// -------------------------------------------------------------------------------------------
// The kinds.
// -------------------------------------------------------------------------------------------

string_enum! {
    /// `customizations.postInstallationScriptExtension` (Windows templates).
    pub enum ScriptExtension { Cmd = "cmd", Ps1 = "ps1" }
}
string_enum! {
    /// `customizations.language` (Windows display language).
    pub enum Language {
        CsCz = "cs-cz", DeDe = "de-de", EnUs = "en-us", EsEs = "es-es", FrFr = "fr-fr",
        ItIt = "it-it", NlNl = "nl-nl", PlPl = "pl-pl", PtPt = "pt-pt",
    }
}
string_enum! {
    /// `customizations.imageType` (bring your own image).
    pub enum ImageType { Qcow2 = "qcow2", Raw = "raw" }
}
string_enum! {
    /// `customizations.imageCheckSumType`.
    pub enum ChecksumType { Md5 = "md5", Sha1 = "sha1", Sha256 = "sha256", Sha512 = "sha512" }
}
string_enum! {
    /// File systems of a partition (`dedicated.server.reinstall` layout).
    pub enum FileSystem {
        Btrfs = "btrfs", Ext3 = "ext3", Ext4 = "ext4", Fat16 = "fat16", None = "none", Ntfs = "ntfs",
        Reiserfs = "reiserfs", Swap = "swap", Ufs = "ufs", Vmfs5 = "vmfs5", Vmfs6 = "vmfs6",
        Vmfsl = "vmfsl", Xfs = "xfs", Zfs = "zfs",
    }
}
string_enum! {
    /// What the server boots.
    pub enum BootModeKind { Disk = "disk", Rescue = "rescue", Ipxe = "ipxe", Network = "network", BootId = "bootId" }
}
string_enum! {
    /// Whether ovhform reboots a server after changing its boot.
    pub enum RebootKind { Never = "never", OnChange = "onChange" }
}
string_enum! {
    /// Whether ovhform may reinstall the server.
    pub enum ReinstallKind { Manual = "manual", Auto = "auto", Never = "never" }
}
string_enum! {
    /// What to do when live state drifts from the manifest.
    pub enum DriftKind { Ignore = "ignore", Warn = "warn", Correct = "correct" }
}

raw_struct! {
    /// The name and labels of a document.
    #[schemars(rename = "Metadata")]
    pub struct RawMetadata ("metadata") {
        /// Server: the OVHcloud service name (e.g. `ns3012345.ip-51-68-1.eu`). Group/window: its name.
        "name" => name: Sp<String>,
        /// Free labels, matched by ServerGroup selectors.
        "labels" => labels: Option<Map<Sp<String>>>,
    }
}

raw_struct! {
    /// `customizations`: the template inputs of the reinstall, camelCase as in the API.
    #[schemars(rename = "Customizations")]
    pub struct RawCustomizations ("customizations") {
        /// Hostname set by the installer (RFC 1035).
        "hostname" => hostname: Option<Sp<String>>,
        /// One OpenSSH public key for root/the default user.
        "sshKey" => ssh_key: Option<Sp<ValueSource>>,
        /// Script run after install; write plain text, ovhform base64-encodes it. Secret.
        "postInstallationScript" => post_installation_script: Option<Sp<ValueSource>>,
        /// Windows: `ps1` or `cmd`.
        "postInstallationScriptExtension" => post_installation_script_extension: Option<Sp<ScriptExtension>>,
        /// Windows display language.
        "language" => language: Option<Sp<Language>>,
        /// cloud-init user data; plain text, base64-encoded by ovhform. Secret.
        "configDriveUserData" => config_drive_user_data: Option<Sp<ValueSource>>,
        /// cloud-init metadata (string map).
        "configDriveMetadata" => config_drive_metadata: Option<Map<Sp<ValueSource>>>,
        /// EFI bootloader path written at install.
        "efiBootloaderPath" => efi_bootloader_path: Option<Sp<String>>,
        /// Bring-your-own-image URL (http/https).
        "imageURL" => image_url: Option<Sp<ValueSource>>,
        /// `qcow2` or `raw`.
        "imageType" => image_type: Option<Sp<ImageType>>,
        /// Hex checksum of the image (with imageCheckSumType).
        "imageCheckSum" => image_checksum: Option<Sp<String>>,
        /// `md5`, `sha1`, `sha256` or `sha512`.
        "imageCheckSumType" => image_checksum_type: Option<Sp<ChecksumType>>,
        /// HTTP headers sent when fetching the image. Values are secret.
        "httpHeaders" => http_headers: Option<Map<Sp<ValueSource>>>,
        /// Enable LACP bonding (if applicable).
        "enableLacpBonding" => enable_lacp_bonding: Option<Sp<bool>>,
        /// Nutanix configuration (string map).
        "nutanixConfiguration" => nutanix_configuration: Option<Map<Sp<ValueSource>>>,
        /// Flavor version.
        "version" => version: Option<Sp<String>>,
    }
}

raw_struct! {
    /// Hardware RAID of the OS disk group.
    #[schemars(rename = "HardwareRaid")]
    pub struct RawHardwareRaid ("hardwareRaid") {
        /// 0, 1, 5, 6, 10, 50 or 60 (default 1).
        "raidLevel" => raid_level: Option<Sp<u32>>,
        /// Number of arrays (default 1).
        "arrays" => arrays: Option<Sp<u32>>,
        /// Number of disks (default: all disks of the group).
        "disks" => disks: Option<Sp<u32>>,
        /// Number of spare disks (default 0).
        "spares" => spares: Option<Sp<u32>>,
    }
}

raw_struct! {
    /// A named LVM volume or zpool.
    #[schemars(rename = "VolumeName")]
    pub struct RawVolumeName ("extras name") {
        /// The LV or zpool name.
        "name" => name: Sp<String>,
    }
}

raw_struct! {
    /// Partition extras: LVM logical volume or ZFS pool.
    #[schemars(rename = "Extras")]
    pub struct RawExtras ("extras") {
        /// Put the partition on an LVM logical volume with this name.
        "lv" => lv: Option<RawVolumeName>,
        /// Put the (zfs) partition in this zpool.
        "zp" => zp: Option<RawVolumeName>,
    }
}

raw_struct! {
    /// One partition of the layout.
    #[schemars(rename = "Partition")]
    pub struct RawPartition ("a partition") {
        /// `/…` or `swap`.
        "mountPoint" => mount_point: Sp<String>,
        /// File system.
        "fileSystem" => file_system: Sp<FileSystem>,
        /// Software RAID level 0, 1, 5, 6, 7 or 10 (default 1; always sent explicitly).
        "raidLevel" => raid_level: Option<Sp<u32>>,
        /// Size in MiB or with a unit; 0 (the default) = fill.
        "size" => size: Option<Sp<SizeMiB>>,
        /// LVM / ZFS options.
        "extras" => extras: Option<RawExtras>,
    }
}

raw_struct! {
    /// Partitioning of the OS disk group.
    #[schemars(rename = "Partitioning")]
    pub struct RawPartitioning ("partitioning") {
        /// Number of disks to partition (default: all).
        "disks" => disks: Option<Sp<u32>>,
        /// The partitions (default: the OS default scheme).
        "layout" => layout: Option<Sp<Vec<RawPartition>>>,
        /// A named partition scheme of the template.
        "schemeName" => scheme_name: Option<Sp<String>>,
    }
}

raw_struct! {
    /// Storage: the one disk group the OS goes on, and the disk groups kept intact.
    #[schemars(rename = "Storage")]
    pub struct RawStorage ("storage") {
        /// The disk group the OS goes on (default: the API's, disk group 1).
        "diskGroupId" => disk_group_id: Option<Sp<u32>>,
        /// Hardware RAID for that disk group (omit for JBOD).
        "hardwareRaid" => hardware_raid: Option<One<RawHardwareRaid>>,
        /// Partitioning of that disk group.
        "partitioning" => partitioning: Option<RawPartitioning>,
        /// Other disk groups whose data survives the reinstall (sent as {diskGroupId, erase: false}).
        "keepDiskGroups" => keep_disk_groups: Option<Sp<Vec<Sp<u32>>>>,
    }
}

raw_struct! {
    /// What a reinstall installs.
    #[schemars(rename = "Install")]
    pub struct RawInstall ("install") {
        /// The operating system (`operatingSystem`), e.g. `debian12_64`. Required once the
        /// group template and the server's own spec are merged.
        "os" => os: Option<Sp<String>>,
        /// Template inputs.
        "customizations" => customizations: Option<RawCustomizations>,
        /// Disk layout.
        "storage" => storage: Option<One<RawStorage>>,
        /// Bump to force a reinstall with an unchanged spec.
        "generation" => generation: Option<Sp<u64>>,
    }
}

raw_struct! {
    /// What the server boots.
    #[schemars(rename = "Boot")]
    pub struct RawBoot ("boot") {
        /// disk | rescue | ipxe | network | bootId. Required once template and server are merged.
        "mode" => mode: Option<Sp<BootModeKind>>,
        /// With mode ipxe: the iPXE script (inline or {file: PATH}); starts with `#!ipxe`.
        "ipxeScript" => ipxe_script: Option<Sp<ValueSource>>,
        /// With mode rescue: the rescue kernel (default `rescue-customer`).
        "rescue" => rescue: Option<Sp<String>>,
        /// With mode network: the network boot kernel (e.g. `ipxe-shell`).
        "network" => network: Option<Sp<String>>,
        /// With mode bootId: an explicit boot id.
        "bootId" => boot_id: Option<Sp<u64>>,
        /// never (default) | onChange.
        "reboot" => reboot: Option<Sp<RebootKind>>,
        /// A lease on a temporary boot (not with mode disk): how long it lasts once set, e.g.
        /// `2h`; then the server returns to booting from disk.
        "for" => lease_for: Option<Sp<String>>,
        /// A lease on a temporary boot: when it ends (RFC 3339 with an offset, e.g.
        /// `2026-12-01T10:00:00Z`); then the server returns to booting from disk.
        "until" => lease_until: Option<Sp<String>>,
    }
}

raw_struct! {
    /// Plain server attributes (PUT /dedicated/server/{serviceName}).
    #[schemars(rename = "Settings")]
    pub struct RawSettings ("settings") {
        /// EFI bootloader path.
        "efiBootloaderPath" => efi_bootloader_path: Option<Sp<String>>,
        /// OVH monitoring.
        "monitoring" => monitoring: Option<Sp<bool>>,
        /// Ask OVH not to intervene on monitoring alerts.
        "noIntervention" => no_intervention: Option<Sp<bool>>,
        /// Mail for rescue credentials.
        "rescueMail" => rescue_mail: Option<Sp<String>>,
        /// SSH key for the rescue system.
        "rescueSshKey" => rescue_ssh_key: Option<Sp<String>>,
        /// Root device.
        "rootDevice" => root_device: Option<Sp<String>>,
    }
}

raw_struct! {
    /// Drift handling per area.
    #[schemars(rename = "Drift")]
    pub struct RawDrift ("drift") {
        /// ignore | warn | correct.
        "boot" => boot: Option<Sp<DriftKind>>,
        /// ignore | warn | correct.
        "settings" => settings: Option<Sp<DriftKind>>,
        /// ignore | warn | correct.
        "install" => install: Option<Sp<DriftKind>>,
    }
}

raw_struct! {
    /// What ovhform may do to the server.
    #[schemars(rename = "Policy")]
    pub struct RawPolicy ("policy") {
        /// manual (default) | auto | never.
        "reinstall" => reinstall: Option<Sp<ReinstallKind>>,
        /// Drift handling.
        "drift" => drift: Option<RawDrift>,
        /// Name of a MaintenanceWindow.
        "maintenanceWindow" => maintenance_window: Option<Sp<String>>,
        /// Stop managing the server for now.
        "suspend" => suspend: Option<Sp<bool>>,
    }
}

raw_struct! {
    /// The spec of a Server (also a ServerGroup's template).
    #[schemars(rename = "ServerSpec")]
    pub struct RawServerSpec ("spec") {
        /// What a reinstall installs.
        "install" => install: Option<RawInstall>,
        /// What the server boots.
        "boot" => boot: Option<RawBoot>,
        /// Plain attributes.
        "settings" => settings: Option<RawSettings>,
        /// What ovhform may do.
        "policy" => policy: Option<RawPolicy>,
    }
}

raw_struct! {
    /// `kind: Server`.
    #[schemars(rename = "ServerDoc")]
    pub struct RawServerDoc ("a Server document") {
        /// Always `ovhform/v1`.
        "apiVersion" => api_version: ApiVersionV1,
        /// `Server`.
        "kind" => kind: KindServer,
        /// Service name and labels.
        "metadata" => metadata: RawMetadata,
        /// The desired state (merged over its group's template).
        "spec" => spec: Option<NodeOf<RawServerSpec>>,
    }
}

raw_struct! {
    /// Label selector.
    #[schemars(rename = "Selector")]
    pub struct RawSelector ("selector") {
        /// Servers whose labels include all of these.
        "matchLabels" => match_labels: Option<Map<Sp<String>>>,
        /// Or: the live servers whose OVH IAM tags (set in the console or the API) include all
        /// of these, read from the listing every plan makes. Needs a `template`. A wipe of a
        /// server selected this way is never automatic: anyone allowed to tag it could have.
        "matchTags" => match_tags: Option<Map<Sp<String>>>,
    }
}

raw_struct! {
    /// The spec of a ServerGroup.
    #[schemars(rename = "GroupSpec")]
    pub struct RawGroupSpec ("ServerGroup spec") {
        /// Service names of the members.
        "members" => members: Option<Vec<Sp<String>>>,
        /// Or: members by labels (manifests) or by IAM tags (live servers).
        "selector" => selector: Option<RawSelector>,
        /// A server spec merged under each member's own (the member's fields win).
        "template" => template: Option<NodeOf<RawServerSpec>>,
        /// At most this many members reinstalling at once.
        "maxConcurrentReinstalls" => max_concurrent_reinstalls: Option<Sp<u32>>,
    }
}

raw_struct! {
    /// `kind: ServerGroup`.
    #[schemars(rename = "GroupDoc")]
    pub struct RawGroupDoc ("a ServerGroup document") {
        /// Always `ovhform/v1`.
        "apiVersion" => api_version: ApiVersionV1,
        /// `ServerGroup`.
        "kind" => kind: KindServerGroup,
        /// Group name.
        "metadata" => metadata: RawMetadata,
        /// Members, template, limits.
        "spec" => spec: RawGroupSpec,
    }
}

raw_struct! {
    /// The spec of a MaintenanceWindow.
    #[schemars(rename = "WindowSpec")]
    pub struct RawWindowSpec ("MaintenanceWindow spec") {
        /// When windows open: a 5-field cron expression.
        "schedule" => schedule: Sp<String>,
        /// How long each stays open (`2h`, `90m`).
        "duration" => duration: Sp<String>,
        /// IANA time zone of the schedule (default `UTC`).
        "timeZone" => time_zone: Option<Sp<String>>,
    }
}

raw_struct! {
    /// `kind: MaintenanceWindow`.
    #[schemars(rename = "WindowDoc")]
    pub struct RawWindowDoc ("a MaintenanceWindow document") {
        /// Always `ovhform/v1`.
        "apiVersion" => api_version: ApiVersionV1,
        /// `MaintenanceWindow`.
        "kind" => kind: KindMaintenanceWindow,
        /// Window name.
        "metadata" => metadata: RawMetadata,
        /// Schedule, duration, time zone.
        "spec" => spec: RawWindowSpec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::parse_documents;

    fn convert<T: FromNode>(y: &str) -> (Option<T>, Vec<Code>) {
        let files = [SourceFile {
            path: "t.yaml".into(),
            source: None,
        }];
        let mut sink = Sink::new(&files);
        let n = parse_documents(y, 0).unwrap().remove(0);
        let v = T::from_node(n.get("v").unwrap(), &mut sink);
        (v, sink.diags.iter().map(|d| d.code).collect())
    }

    #[test]
    fn sizes_normalise_to_mib() {
        for (y, mib) in [
            ("v: 1024", 1024),
            ("v: 1GiB", 1024),
            ("v: 512MiB", 512),
            ("v: 2 TiB", 2 * 1024 * 1024),
            ("v: 0", 0),
        ] {
            assert_eq!(convert::<SizeMiB>(y).0, Some(SizeMiB(mib)), "{y}");
        }
        for y in [
            "v: 1GB",
            "v: \"1024\"",
            "v: -5",
            "v: big",
            "v: [1]",
            "v: 1.5KiB",
            "v: 18446744073709551615",
            "v: 4096PiB",
        ] {
            assert_eq!(convert::<SizeMiB>(y).1, [Code::SizeInvalid], "{y}");
        }
    }

    #[test]
    fn value_sources() {
        assert_eq!(
            convert::<ValueSource>("v: text").0,
            Some(ValueSource::Inline("text".into()))
        );
        assert!(matches!(
            convert::<ValueSource>("v: {file: a, sensitive: true}").0,
            Some(ValueSource::File {
                sensitive: true,
                ..
            })
        ));
        assert!(matches!(
            convert::<ValueSource>("v: {env: X}").0,
            Some(ValueSource::Env(_))
        ));
        assert!(matches!(
            convert::<ValueSource>("v: {base64: aGk=}").0,
            Some(ValueSource::Base64(_))
        ));
        assert_eq!(
            convert::<ValueSource>("v: {file: a, env: b}").1,
            [Code::ValueSourceInvalid]
        );
        assert_eq!(
            convert::<ValueSource>("v: {env: b, sensitive: true}").1,
            [Code::ValueSourceInvalid]
        );
        assert_eq!(
            convert::<ValueSource>("v: {fiel: a}").1,
            [Code::UnknownField]
        );
        assert_eq!(convert::<ValueSource>("v: 3").1, [Code::WrongType]);
    }

    #[test]
    fn structs_report_every_problem_with_a_suggestion() {
        let files = [SourceFile {
            path: "t.yaml".into(),
            source: None,
        }];
        let mut sink = Sink::new(&files);
        let n = parse_documents("v:\n  moutnPoint: /\n  raidLevel: one\n  colour: red\n", 0)
            .unwrap()
            .remove(0);
        assert!(RawPartition::from_node(n.get("v").unwrap(), &mut sink).is_none());
        let got: Vec<(Code, u32, String)> = sink
            .diags
            .iter()
            .map(|d| (d.code, d.line, d.hint.clone()))
            .collect();
        assert_eq!(
            got[0],
            (
                Code::UnknownField,
                2,
                "did you mean `mountPoint`?".to_owned()
            )
        );
        assert_eq!((got[1].0, got[1].1), (Code::WrongType, 3));
        assert_eq!((got[2].0, got[2].1), (Code::UnknownField, 4));
        // Missing required fields name the mapping's key line.
        assert_eq!(got[3].0, Code::MissingField);
        assert_eq!(got[4].0, Code::MissingField);
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn one_accepts_a_single_item_list() {
        assert!(
            convert::<One<RawHardwareRaid>>("v: [{raidLevel: 1}]")
                .0
                .is_some()
        );
        assert_eq!(
            convert::<One<RawHardwareRaid>>("v: [{raidLevel: 1}, {raidLevel: 5}]").1,
            [Code::StorageMultipleConfigs]
        );
    }
}
