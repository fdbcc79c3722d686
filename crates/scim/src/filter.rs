//! SCIM filters (RFC 7644 section 3.4.2.2): a bounded recursive-descent parser and an
//! evaluator over resources in canonical form.
//!
//! A filter arrives in a query string from any holder of a token, so parsing is bounded: at
//! most [`MAX_FILTER_LEN`] bytes and [`MAX_DEPTH`] nested groups, which also bounds the
//! recursion of evaluation. Names are resolved against the resource type's schema
//! ([`Filter::resolve`]), so an unknown attribute is `invalidFilter` rather than a filter
//! that silently matches nothing, and ordering a boolean is refused the same way.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::ScimError;
use super::schema::{Attribute, Kind, ResourceType};

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;

/// The deepest nesting of parentheses, `not` and value filters accepted.
pub const MAX_DEPTH: usize = 32;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Contains (strings).
    Co,
    /// Starts with (strings).
    Sw,
    /// Ends with (strings).
    Ew,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }

    fn is_ordering(self) -> bool {
        matches!(self, Self::Gt | Self::Ge | Self::Lt | Self::Le)
    }

    fn is_substring(self) -> bool {
        matches!(self, Self::Co | Self::Sw | Self::Ew)
    }
}

/// An attribute path: `[URN:]attr[.sub]`. After [`Filter::resolve`] the names are canonical
/// and the type facts needed for comparison are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The extension URN the attribute lives under; `None` for core attributes (a core URN
    /// prefix is dropped when resolving).
    pub uri: Option<String>,
    /// The attribute.
    pub attr: String,
    /// The sub-attribute.
    pub sub: Option<String>,
    kind: Kind,
    case_exact: bool,
}

impl AttrPath {
    /// Parses `[URN:]attr[.sub]` (no value filter).
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || !text.chars().all(is_path_char) {
            return None;
        }
        let (uri, rest) = if text.len() > 4 && text[..4].eq_ignore_ascii_case("urn:") {
            let (uri, rest) = text.rsplit_once(':')?;
            (Some(uri.to_owned()), rest)
        } else {
            (None, text)
        };
        let (attr, sub) = match rest.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (rest, None),
        };
        let valid = |s: &str| {
            s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
        };
        if !valid(attr) || sub.is_some_and(|s| !valid(s)) {
            return None;
        }
        Some(Self {
            uri,
            attr: attr.to_owned(),
            sub: sub.map(str::to_owned),
            kind: Kind::String,
            case_exact: false,
        })
    }

    /// A core attribute path, already canonical (for server-built filters).
    pub fn core(attr: &str, sub: Option<&str>) -> Self {
        Self {
            uri: None,
            attr: attr.to_owned(),
            sub: sub.map(str::to_owned),
            kind: Kind::String,
            case_exact: false,
        }
    }

    /// Resolves the path against a resource type; `None` when it names no attribute.
    pub fn resolve_in(&mut self, rt: &'static ResourceType) -> Option<&'static Attribute> {
        let resolved = rt.resolve(self.uri.as_deref(), &self.attr)?;
        self.uri = resolved.extension.map(str::to_owned);
        self.attr = resolved.attribute.name.to_owned();
        let leaf = match &self.sub {
            Some(sub) => {
                let s = resolved.attribute.sub(sub)?;
                self.sub = Some(s.name.to_owned());
                s
            }
            None => resolved.attribute,
        };
        self.set_leaf(leaf);
        Some(resolved.attribute)
    }

    /// Resolves a path relative to a complex attribute (inside a value filter).
    fn resolve_sub(&mut self, parent: &'static Attribute) -> Option<&'static Attribute> {
        if self.uri.is_some() || self.sub.is_some() {
            return None;
        }
        let s = parent.sub(&self.attr)?;
        self.attr = s.name.to_owned();
        self.set_leaf(s);
        Some(s)
    }

    fn set_leaf(&mut self, leaf: &'static Attribute) {
        // A complex multi-valued attribute compared as a whole compares its `value`.
        let leaf = if leaf.kind == Kind::Complex {
            leaf.sub("value").unwrap_or(leaf)
        } else {
            leaf
        };
        self.kind = leaf.kind;
        self.case_exact = leaf.case_exact;
    }

    /// The values this path reaches in `resource`, arrays flattened.
    pub fn values<'a>(&self, resource: &'a Value) -> Vec<&'a Value> {
        let base = match &self.uri {
            Some(uri) => resource.get(uri.as_str()),
            None => Some(resource),
        };
        let mut out = Vec::new();
        let Some(top) = base.and_then(|b| b.get(self.attr.as_str())) else {
            return out;
        };
        let elements: Vec<&Value> = match top {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for e in elements {
            let v = match (&self.sub, e) {
                (Some(sub), _) => e.get(sub.as_str()),
                (None, Value::Object(_)) => e.get("value"),
                (None, _) => Some(e),
            };
            match v {
                Some(Value::Array(items)) => out.extend(items.iter()),
                Some(Value::Null) | None => {}
                Some(v) => out.push(v),
            }
        }
        out
    }
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '$')
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Both hold.
    And(Box<Filter>, Box<Filter>),
    /// Either holds.
    Or(Box<Filter>, Box<Filter>),
    /// The inner filter does not hold.
    Not(Box<Filter>),
    /// `path pr`: the attribute has a value.
    Present(AttrPath),
    /// `path op value`.
    Compare(AttrPath, CompareOp, Value),
    /// `attr[filter]`: some element of a complex attribute matches the inner filter.
    ValuePath(AttrPath, Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Word(String),
    Literal(Value),
}

fn tokenize(text: &str) -> Result<Vec<Token>, ScimError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::OpenBracket,
                    _ => Token::CloseBracket,
                });
            }
            '"' => {
                // A JSON string: find its end (an unescaped quote), then let serde_json
                // decode the escapes exactly as JSON defines them.
                chars.next();
                let mut escaped = false;
                let mut end = None;
                for (j, d) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == '"' {
                        end = Some(j);
                        break;
                    }
                }
                let Some(end) = end else {
                    return Err(ScimError::invalid_filter("unterminated string"));
                };
                let s: String = serde_json::from_str(&text[i..=end])
                    .map_err(|_| ScimError::invalid_filter("invalid string escape"))?;
                tokens.push(Token::Literal(Value::String(s)));
            }
            _ => {
                let mut end = text.len();
                while let Some(&(j, d)) = chars.peek() {
                    if matches!(d, ' ' | '\t' | '\n' | '\r' | '(' | ')' | '[' | ']' | '"') {
                        end = j;
                        break;
                    }
                    chars.next();
                }
                let word = &text[i..end];
                tokens.push(match word {
                    w if w.eq_ignore_ascii_case("true") => Token::Literal(Value::Bool(true)),
                    w if w.eq_ignore_ascii_case("false") => Token::Literal(Value::Bool(false)),
                    w if w.eq_ignore_ascii_case("null") => Token::Literal(Value::Null),
                    w if w.starts_with(|c: char| c.is_ascii_digit() || c == '-') => {
                        let n: serde_json::Number = w
                            .parse()
                            .map_err(|_| ScimError::invalid_filter(format!("bad number `{w}`")))?;
                        Token::Literal(Value::Number(n))
                    }
                    w => Token::Word(w.to_owned()),
                });
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), ScimError> {
        if self.next().as_ref() == Some(token) {
            Ok(())
        } else {
            Err(ScimError::invalid_filter(format!("expected {what}")))
        }
    }

    fn or(&mut self, depth: usize) -> Result<Filter, ScimError> {
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and(depth)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Filter, ScimError> {
        let mut left = self.unary(depth)?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary(depth)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn nested(&mut self, depth: usize) -> Result<Filter, ScimError> {
        if depth >= MAX_DEPTH {
            return Err(ScimError::invalid_filter(format!(
                "nested deeper than {MAX_DEPTH}"
            )));
        }
        self.or(depth + 1)
    }

    fn unary(&mut self, depth: usize) -> Result<Filter, ScimError> {
        if self.keyword("not") && self.tokens.get(self.pos + 1) == Some(&Token::Open) {
            self.pos += 2;
            let inner = self.nested(depth)?;
            self.expect(&Token::Close, "`)`")?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let inner = self.nested(depth)?;
            self.expect(&Token::Close, "`)`")?;
            return Ok(inner);
        }
        let path = match self.next() {
            Some(Token::Word(w)) => AttrPath::parse(&w)
                .ok_or_else(|| ScimError::invalid_filter(format!("bad attribute path `{w}`")))?,
            _ => return Err(ScimError::invalid_filter("expected an attribute path")),
        };
        if self.peek() == Some(&Token::OpenBracket) {
            if path.sub.is_some() {
                return Err(ScimError::invalid_filter(
                    "a value filter follows an attribute, not a sub-attribute",
                ));
            }
            self.pos += 1;
            let inner = self.nested(depth)?;
            self.expect(&Token::CloseBracket, "`]`")?;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let op = match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present(path));
            }
            Some(Token::Word(w)) => CompareOp::parse(&w)
                .ok_or_else(|| ScimError::invalid_filter(format!("unknown operator `{w}`")))?,
            _ => return Err(ScimError::invalid_filter("expected an operator")),
        };
        match self.next() {
            Some(Token::Literal(v)) => Ok(Filter::Compare(path, op, v)),
            _ => Err(ScimError::invalid_filter(
                "expected a value (a string, number, true, false or null)",
            )),
        }
    }
}

impl Filter {
    /// Parses a filter; every failure is `invalidFilter`.
    pub fn parse(text: &str) -> Result<Self, ScimError> {
        if text.len() > MAX_FILTER_LEN {
            return Err(ScimError::invalid_filter(format!(
                "longer than {MAX_FILTER_LEN} bytes"
            )));
        }
        let mut parser = Parser {
            tokens: tokenize(text)?,
            pos: 0,
        };
        let filter = parser.or(0)?;
        if parser.pos != parser.tokens.len() {
            return Err(ScimError::invalid_filter(
                "unexpected text after the filter",
            ));
        }
        Ok(filter)
    }

    /// Resolves every attribute name against `rt` (canonical names, types), refusing unknown
    /// attributes and comparisons the type does not allow.
    pub fn resolve(&mut self, rt: &'static ResourceType) -> Result<(), ScimError> {
        self.resolve_with(&mut |path| path.resolve_in(rt).ok_or_else(|| unknown(path)))
    }

    /// Resolves a value filter's paths against the sub-attributes of `parent`.
    pub(crate) fn resolve_sub(&mut self, parent: &'static Attribute) -> Result<(), ScimError> {
        self.resolve_with(&mut |path| path.resolve_sub(parent).ok_or_else(|| unknown(path)))
    }

    /// `f` resolves one path and returns the attribute it starts at (whose sub-attributes a
    /// value filter names).
    fn resolve_with(
        &mut self,
        f: &mut dyn FnMut(&mut AttrPath) -> Result<&'static Attribute, ScimError>,
    ) -> Result<(), ScimError> {
        match self {
            Self::And(a, b) | Self::Or(a, b) => {
                a.resolve_with(f)?;
                b.resolve_with(f)
            }
            Self::Not(a) => a.resolve_with(f),
            Self::Present(path) => f(path).map(|_| ()),
            Self::Compare(path, op, value) => {
                f(path)?;
                check_comparison(path, *op, value)
            }
            Self::ValuePath(path, inner) => {
                let parent = f(path)?;
                if parent.kind != Kind::Complex {
                    return Err(ScimError::invalid_filter(format!(
                        "`{}` has no sub-attributes to filter on",
                        path.attr
                    )));
                }
                inner.resolve_sub(parent)
            }
        }
    }

    /// Whether `resource` (in canonical form) matches.
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Self::And(a, b) => a.matches(resource) && b.matches(resource),
            Self::Or(a, b) => a.matches(resource) || b.matches(resource),
            Self::Not(a) => !a.matches(resource),
            Self::Present(path) => path.values(resource).into_iter().any(is_present),
            Self::Compare(path, CompareOp::Ne, literal) => {
                !Self::Compare(path.clone(), CompareOp::Eq, literal.clone()).matches(resource)
            }
            Self::Compare(path, op, literal) => {
                let values = path.values(resource);
                if literal.is_null() {
                    return values.is_empty() == (*op == CompareOp::Eq);
                }
                values
                    .into_iter()
                    .any(|v| compare(v, *op, literal, path.kind, path.case_exact))
            }
            Self::ValuePath(path, inner) => {
                let base = match &path.uri {
                    Some(uri) => resource.get(uri.as_str()),
                    None => Some(resource),
                };
                match base.and_then(|b| b.get(path.attr.as_str())) {
                    Some(Value::Array(items)) => items.iter().any(|e| inner.matches(e)),
                    Some(v @ Value::Object(_)) => inner.matches(v),
                    _ => false,
                }
            }
        }
    }

    /// `attr eq "string"`, the one shape a store may answer with an index.
    pub fn as_simple_eq(&self) -> Option<(&AttrPath, &str)> {
        match self {
            Self::Compare(path, CompareOp::Eq, Value::String(s)) => Some((path, s)),
            _ => None,
        }
    }
}

fn unknown(path: &AttrPath) -> ScimError {
    let mut name = path.attr.clone();
    if let Some(sub) = &path.sub {
        name = format!("{name}.{sub}");
    }
    if let Some(uri) = &path.uri {
        name = format!("{uri}:{name}");
    }
    ScimError::invalid_filter(format!("unknown attribute `{name}`"))
}

fn check_comparison(path: &AttrPath, op: CompareOp, value: &Value) -> Result<(), ScimError> {
    let bad = |why: &str| {
        Err(ScimError::invalid_filter(format!(
            "`{}` {why}",
            path.sub.as_deref().unwrap_or(&path.attr)
        )))
    };
    match (path.kind, value) {
        (Kind::Boolean, _) if op.is_ordering() || op.is_substring() => {
            bad("is a boolean: only eq, ne and pr apply")
        }
        (Kind::Boolean, Value::Bool(_) | Value::Null) => Ok(()),
        (Kind::Boolean, _) => bad("is a boolean: compare it with true or false"),
        (Kind::DateTime, Value::String(s)) if parse_time(s).is_none() => {
            bad("is a dateTime: the value must be an RFC 3339 time")
        }
        (Kind::Integer, _) if op.is_substring() => bad("is an integer: co, sw and ew do not apply"),
        (_, Value::Bool(_)) if path.kind != Kind::Boolean => bad("is not a boolean"),
        _ => Ok(()),
    }
}

fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// An RFC 3339 time, as SCIM writes `dateTime` values.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn compare(v: &Value, op: CompareOp, literal: &Value, kind: Kind, case_exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (v, literal) {
        (Value::String(a), Value::String(b)) if kind == Kind::DateTime => {
            match (parse_time(a), parse_time(b)) {
                (Some(a), Some(b)) => Some(a.cmp(&b)),
                _ => None,
            }
        }
        (Value::String(a), Value::String(b)) => {
            let (a, b) = if case_exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            return match op {
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                _ => ordering_holds(op, a.cmp(&b)),
            };
        }
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
        (Value::Bool(a), Value::Bool(b)) if matches!(op, CompareOp::Eq) => Some(a.cmp(b)),
        _ => None,
    };
    match ordering {
        Some(o) if !op.is_substring() => ordering_holds(op, o),
        _ => false,
    }
}

fn ordering_holds(op: CompareOp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op {
        CompareOp::Eq => o == Equal,
        CompareOp::Ne => o != Equal,
        CompareOp::Gt => o == Greater,
        CompareOp::Ge => o != Less,
        CompareOp::Lt => o == Less,
        CompareOp::Le => o != Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}
