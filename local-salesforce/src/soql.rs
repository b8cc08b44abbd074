//! The SOQL subset the integration uses, parsed as strictly as Salesforce does.
//!
//! `SELECT f, … FROM Type [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n]`
//! with `=`, `!=`, `<>`, `<`, `>`, `<=`, `>=`, `[NOT] IN (…)`, `LIKE`, `AND`,
//! `OR`, `NOT` and parentheses. As in Salesforce, `AND` and `OR` cannot be
//! mixed at one level without parentheses, string comparison ignores case,
//! and a backslash in a literal must start one of the documented escapes.
//! The org checks each literal against its field's type before running
//! (`org/query.rs`).
//!
//! Where this subset is stricter than Salesforce, a query Salesforce accepts
//! is refused here (`MALFORMED_QUERY` or `INVALID_FIELD`), never answered
//! differently:
//! - escapes: only the lower-case forms; "Quoted String Escape Sequences"
//!   (SOQL and SOSL Reference) also accepts `\N`, `\R`, `\T`, `\B`, `\F`;
//! - date and date-time literals (`2026-01-01T00:00:00Z`, `TODAY`,
//!   `LAST_N_DAYS:n`) are not parsed;
//! - relationship fields (`Owner.Email`) are unknown columns;
//! - aggregate functions (`COUNT()`), `GROUP BY`, `OFFSET`, `FOR UPDATE`,
//!   semi-joins and `INCLUDES` are not parsed.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub fields: Vec<String>,
    pub object: String,
    pub filter: Option<Expr>,
    pub order: Vec<Order>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub field: String,
    pub descending: bool,
    pub nulls_last: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp {
        field: String,
        op: String,
        value: Literal,
    },
    In {
        field: String,
        negated: bool,
        values: Vec<Literal>,
    },
    Like {
        field: String,
        pattern: String,
    },
}

/// A string literal in its two readings.
#[derive(Debug, Clone, PartialEq)]
struct StrLit {
    /// The value, escapes decoded, for comparisons.
    text: String,
    /// The LIKE pattern: `%` and `_` are wildcards, and `\` escapes the
    /// next character (a literal `\`, `%` or `_`).
    like: String,
    /// `\%` or `\_` appeared: valid only in LIKE.
    like_escapes: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(StrLit),
    Num(f64),
    Sym(String),
}

/// A parse error, reported as `MALFORMED_QUERY`.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed(pub String);

fn lex(text: &str) -> Result<Vec<Tok>, Malformed> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            i += 1;
            let mut s = String::new();
            let mut like = String::new();
            let mut like_escapes = false;
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err(Malformed("unterminated string literal".into()));
                };
                i += 1;
                match c {
                    '\'' => break,
                    '\\' => {
                        let Some(&e) = chars.get(i) else {
                            return Err(Malformed("unterminated string literal".into()));
                        };
                        i += 1;
                        let decoded = match e {
                            '\'' | '"' | '\\' => e,
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            'b' => '\u{8}',
                            'f' => '\u{c}',
                            // Only LIKE gives them meaning, and only LIKE
                            // accepts them (checked by the parser).
                            '_' | '%' => {
                                like_escapes = true;
                                e
                            }
                            'u' => {
                                let hex: String = chars.get(i..i + 4).unwrap_or(&[]).iter().collect();
                                let code = u32::from_str_radix(&hex, 16)
                                    .ok()
                                    .filter(|_| hex.len() == 4)
                                    .and_then(char::from_u32)
                                    .ok_or_else(|| Malformed(format!("Invalid string literal '\\u{hex}'")))?;
                                i += 4;
                                code
                            }
                            other => {
                                return Err(Malformed(format!(
                                    "Invalid string literal '\\{other}'. Illegal character sequence '\\{other}' in string literal."
                                )))
                            }
                        };
                        s.push(decoded);
                        if matches!(decoded, '\\' | '%' | '_') {
                            like.push('\\');
                        }
                        like.push(decoded);
                    }
                    c => {
                        s.push(c);
                        like.push(c);
                    }
                }
            }
            out.push(Tok::Str(StrLit {
                text: s,
                like,
                like_escapes,
            }));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Tok::Num(
                s.parse()
                    .map_err(|_| Malformed(format!("unexpected token: {s}")))?,
            ));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["!=", "<>", "<=", ">="].contains(&two.as_str()) {
                out.push(Tok::Sym(two));
                i += 2;
            } else if "=<>(),".contains(c) {
                out.push(Tok::Sym(c.to_string()));
                i += 1;
            } else {
                return Err(Malformed(format!("unexpected token: '{c}'")));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }
    fn expect_keyword(&mut self, k: &str) -> Result<(), Malformed> {
        if self.keyword(k) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }
    fn sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if x == s)
    }
    fn unexpected(&self) -> Malformed {
        match self.peek() {
            Some(Tok::Word(w)) => Malformed(format!("unexpected token: {w}")),
            Some(Tok::Sym(s)) => Malformed(format!("unexpected token: '{s}'")),
            Some(Tok::Str(s)) => Malformed(format!("unexpected token: '{}'", s.text)),
            Some(Tok::Num(n)) => Malformed(format!("unexpected token: {n}")),
            None => Malformed("unexpected token: <EOF>".into()),
        }
    }
    fn ident(&mut self) -> Result<String, Malformed> {
        const RESERVED: &[&str] = &[
            "select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "limit",
        ];
        match self.peek() {
            Some(Tok::Word(w)) if !RESERVED.contains(&w.to_ascii_lowercase().as_str()) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.unexpected()),
        }
    }
    fn literal(&mut self) -> Result<Literal, Malformed> {
        match self.next() {
            Some(Tok::Str(s)) if s.like_escapes => Err(Malformed(
                "Invalid string literal. Illegal character sequence '\\_' or '\\%' outside LIKE"
                    .into(),
            )),
            Some(Tok::Str(s)) => Ok(Literal::Str(s.text)),
            Some(Tok::Num(n)) => Ok(Literal::Num(n)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            _ => {
                self.pos -= 1;
                Err(self.unexpected())
            }
        }
    }

    fn expr(&mut self) -> Result<Expr, Malformed> {
        let first = self.factor()?;
        let mut items = vec![first];
        let mut joiner: Option<&'static str> = None;
        loop {
            let this = if self.keyword("and") {
                "and"
            } else if self.keyword("or") {
                "or"
            } else {
                break;
            };
            if joiner.is_some_and(|j| j != this) {
                // Salesforce refuses `a AND b OR c`: parentheses are required.
                return Err(self.unexpected());
            }
            joiner = Some(this);
            self.pos += 1;
            items.push(self.factor()?);
        }
        Ok(match joiner {
            None => items.pop().expect("one item"),
            Some("and") => Expr::And(items),
            Some(_) => Expr::Or(items),
        })
    }

    fn factor(&mut self) -> Result<Expr, Malformed> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.factor()?)));
        }
        if self.sym("(") {
            self.pos += 1;
            let e = self.expr()?;
            if !self.sym(")") {
                return Err(self.unexpected());
            }
            self.pos += 1;
            return Ok(e);
        }
        let field = self.ident()?;
        let negated = if self.keyword("not") {
            self.pos += 1;
            if !self.keyword("in") {
                return Err(self.unexpected());
            }
            true
        } else {
            false
        };
        if self.keyword("in") {
            self.pos += 1;
            if !self.sym("(") {
                return Err(self.unexpected());
            }
            self.pos += 1;
            let mut values = vec![self.literal()?];
            while self.sym(",") {
                self.pos += 1;
                values.push(self.literal()?);
            }
            if !self.sym(")") {
                return Err(self.unexpected());
            }
            self.pos += 1;
            return Ok(Expr::In {
                field,
                negated,
                values,
            });
        }
        if self.keyword("like") {
            self.pos += 1;
            return match self.next() {
                Some(Tok::Str(s)) => Ok(Expr::Like {
                    field,
                    pattern: s.like,
                }),
                _ => {
                    self.pos -= 1;
                    Err(self.unexpected())
                }
            };
        }
        let op = match self.next() {
            Some(Tok::Sym(s)) if ["=", "!=", "<>", "<", ">", "<=", ">="].contains(&s.as_str()) => s,
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        };
        let value = self.literal()?;
        Ok(Expr::Cmp { field, op, value })
    }
}

/// Parses a SOQL statement.
pub fn parse(text: &str) -> Result<Query, Malformed> {
    let mut p = Parser {
        toks: lex(text)?,
        pos: 0,
    };
    p.expect_keyword("select")?;
    let mut fields = vec![p.ident()?];
    while p.sym(",") {
        p.pos += 1;
        fields.push(p.ident()?);
    }
    p.expect_keyword("from")?;
    let object = p.ident()?;
    let filter = if p.keyword("where") {
        p.pos += 1;
        Some(p.expr()?)
    } else {
        None
    };
    let mut order = Vec::new();
    if p.keyword("order") {
        p.pos += 1;
        p.expect_keyword("by")?;
        loop {
            let field = p.ident()?;
            let mut descending = false;
            if p.keyword("asc") {
                p.pos += 1;
            } else if p.keyword("desc") {
                p.pos += 1;
                descending = true;
            }
            // Salesforce sorts nulls first in ascending order by default.
            let mut nulls_last = descending;
            if p.keyword("nulls") {
                p.pos += 1;
                if p.keyword("first") {
                    nulls_last = false;
                } else if p.keyword("last") {
                    nulls_last = true;
                } else {
                    return Err(p.unexpected());
                }
                p.pos += 1;
            }
            order.push(Order {
                field,
                descending,
                nulls_last,
            });
            if !p.sym(",") {
                break;
            }
            p.pos += 1;
        }
    }
    let limit = if p.keyword("limit") {
        p.pos += 1;
        match p.next() {
            Some(Tok::Num(n)) if n >= 0.0 && n.fract() == 0.0 => Some(n as usize),
            _ => {
                p.pos -= 1;
                return Err(p.unexpected());
            }
        }
    } else {
        None
    };
    if p.peek().is_some() {
        return Err(p.unexpected());
    }
    Ok(Query {
        fields,
        object,
        filter,
        order,
        limit,
    })
}

impl Expr {
    /// Every field the expression reads.
    pub fn fields(&self, out: &mut Vec<String>) {
        match self {
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.fields(out)),
            Expr::Not(e) => e.fields(out),
            Expr::Cmp { field, .. } | Expr::In { field, .. } | Expr::Like { field, .. } => {
                out.push(field.clone())
            }
        }
    }

    /// Evaluates against a record; `get` reads a field case-insensitively.
    pub fn matches(&self, get: &dyn Fn(&str) -> Value) -> bool {
        match self {
            Expr::And(v) => v.iter().all(|e| e.matches(get)),
            Expr::Or(v) => v.iter().any(|e| e.matches(get)),
            Expr::Not(e) => !e.matches(get),
            Expr::Cmp { field, op, value } => {
                let actual = get(field);
                match op.as_str() {
                    "=" => equals(&actual, value),
                    "!=" | "<>" => !equals(&actual, value),
                    _ => match compare(&actual, value) {
                        Some(o) => match op.as_str() {
                            "<" => o.is_lt(),
                            ">" => o.is_gt(),
                            "<=" => o.is_le(),
                            _ => o.is_ge(),
                        },
                        None => false,
                    },
                }
            }
            Expr::In {
                field,
                negated,
                values,
            } => {
                let actual = get(field);
                values.iter().any(|v| equals(&actual, v)) != *negated
            }
            Expr::Like { field, pattern } => match get(field) {
                Value::String(s) => like(&s.to_lowercase(), &pattern.to_lowercase()),
                _ => false,
            },
        }
    }
}

fn equals(actual: &Value, lit: &Literal) -> bool {
    match (actual, lit) {
        (Value::Null, Literal::Null) => true,
        (Value::String(a), Literal::Str(b)) => a.to_lowercase() == b.to_lowercase(),
        (Value::Bool(a), Literal::Bool(b)) => a == b,
        (Value::Number(a), Literal::Num(b)) => a.as_f64() == Some(*b),
        _ => false,
    }
}

fn compare(actual: &Value, lit: &Literal) -> Option<std::cmp::Ordering> {
    match (actual, lit) {
        (Value::String(a), Literal::Str(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Value::Number(a), Literal::Num(b)) => a.as_f64()?.partial_cmp(b),
        _ => None,
    }
}

/// LIKE with `%`, `_` and their escapes `\%`, `\_`.
fn like(text: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Ch(char),
    }
    let mut pat = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                if let Some(n) = it.next() {
                    pat.push(P::Ch(n));
                }
            }
            '%' => pat.push(P::Any),
            '_' => pat.push(P::One),
            c => pat.push(P::Ch(c)),
        }
    }
    let t: Vec<char> = text.chars().collect();
    // Classic wildcard matching with backtracking on the last `%`.
    let (mut ti, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < pat.len() && (pat[pi] == P::One || pat[pi] == P::Ch(t[ti])) {
            ti += 1;
            pi += 1;
        } else if pi < pat.len() && pat[pi] == P::Any {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < pat.len() && pat[pi] == P::Any {
        pi += 1;
    }
    pi == pat.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> impl Fn(&str) -> Value {
        move |f: &str| {
            v.as_object()
                .unwrap()
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(f))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null)
        }
    }

    #[test]
    fn parses_the_subset() {
        let q = parse("SELECT Id, Email FROM User WHERE (Email = 'a@b.c' AND IsActive = true) OR Username IN ('x','y') ORDER BY CreatedDate DESC, Id LIMIT 5").unwrap();
        assert_eq!(q.fields, vec!["Id", "Email"]);
        assert_eq!(q.object, "User");
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.order.len(), 2);
        assert!(q.order[0].descending);
    }

    #[test]
    fn refuses_what_salesforce_refuses() {
        for bad in [
            "SELECT FROM User",
            "SELECT Id User",
            "SELECT Id FROM User WHERE a = 'x' AND b = 'y' OR c = 'z'",
            "SELECT Id FROM User WHERE Name = 'it\\'s",
            "SELECT Id FROM User WHERE Name = 'a\\qb'",
            "SELECT Id FROM User WHERE Name = 'a\\_b'",
            "SELECT Id FROM User LIMIT x",
            "SELECT Id FROM User WHERE Name = 'x' extra",
            "SELECT Id FROM User WHERE Name == 'x'",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes_decode() {
        let q = parse(r"SELECT Id FROM Contact WHERE LastName = 'O\'Brien \\ \u00e9\n'").unwrap();
        let Some(Expr::Cmp {
            value: Literal::Str(s),
            ..
        }) = q.filter
        else {
            panic!()
        };
        assert_eq!(s, "O'Brien \\ é\n");
    }

    #[test]
    fn evaluation() {
        let r = rec(
            json!({"Email": "Agent.Demo@Acme.example", "IsActive": true, "Phone": "+39 333 123 4567", "Name": "100%_x"}),
        );
        let m = |q: &str| {
            parse(&format!("SELECT Id FROM User WHERE {q}"))
                .unwrap()
                .filter
                .unwrap()
                .matches(&r)
        };
        assert!(m("Email = 'agent.demo@acme.example'"));
        assert!(m("IsActive = true AND Email != 'x'"));
        assert!(m("Phone LIKE '%4567'"));
        assert!(!m("Phone LIKE '4567%'"));
        assert!(m("Name LIKE '100\\%\\_%'"));
        assert!(!m("Name LIKE '100\\%\\_y'"));
        assert!(m("Phone IN ('x', '+39 333 123 4567')"));
        assert!(m("Phone NOT IN ('x')"));
        assert!(m("NOT (IsActive = false)"));
        assert!(m("Missing = null"));
    }
}
