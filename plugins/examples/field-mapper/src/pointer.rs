//! RFC 6901 JSON pointers below the root of an event's data, and the three
//! things the mapper does with them: take a value out, write one in
//! (creating missing parent objects), and read the parsed form back as text.
//!
//! A reference token steps into an object member, or into an element of an
//! existing array when the token is one of its indexes (`0`, `1`, ... without
//! leading zeros). Arrays never grow: `-` and indexes past the end name
//! nothing. The root pointer `""` is refused, since every mapping step moves,
//! removes or sets a member.

use std::fmt;

use gateway_plugin::Value;
use gateway_plugin::serde_json::Map;
use serde::Deserialize;

/// A parsed pointer with at least one reference token, e.g. `/total/minor_units`.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct Pointer {
    /// The unescaped tokens leading to the container of the value named
    /// (`~1` already turned into `/`, `~0` into `~`).
    parents: Vec<String>,
    /// The unescaped token naming the value in that container.
    last: String,
}

impl Pointer {
    /// Parses `text`: `/` followed by tokens separated by `/`, where `~0`
    /// stands for `~` and `~1` for `/`.
    pub fn parse(text: &str) -> Result<Pointer, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("pointer {text:?} must start with `/`"));
        };
        let (parents, last) = match rest.rsplit_once('/') {
            Some((parents, last)) => (parents.split('/').map(unescape).collect(), last),
            None => (Some(Vec::new()), rest),
        };
        match (parents, unescape(last)) {
            (Some(parents), Some(last)) => Ok(Pointer { parents, last }),
            _ => Err(format!(
                "pointer {text:?} has a `~` not followed by `0` or `1`"
            )),
        }
    }

    /// Removes the value this pointer names from `data` and returns it;
    /// `None` (and `data` untouched) when there is none. An array element
    /// taken out shifts the later ones down.
    pub fn take(&self, data: &mut Value) -> Option<Value> {
        let mut current = data;
        for token in &self.parents {
            current = match current {
                Value::Object(members) => members.get_mut(token)?,
                Value::Array(items) => {
                    let i = index(token, items.len())?;
                    &mut items[i]
                }
                _ => return None,
            };
        }
        match current {
            Value::Object(members) => members.shift_remove(&self.last),
            Value::Array(items) => index(&self.last, items.len()).map(|i| items.remove(i)),
            _ => None,
        }
    }

    /// Writes `value` where this pointer names, replacing what is there.
    /// Missing members on the way become empty objects; a new member goes at
    /// the end of its object. Fails, naming the place (e.g. `/total is a
    /// number, not an object`), when the way passes through something other
    /// than an object or an existing array element.
    pub fn insert(&self, data: &mut Value, value: Value) -> Result<(), String> {
        let mut current = data;
        for (depth, token) in self.parents.iter().enumerate() {
            current = match current {
                Value::Object(members) => members
                    .entry(token.clone())
                    .or_insert_with(|| Value::Object(Map::new())),
                other => self.element(other, token, depth)?,
            };
        }
        match current {
            Value::Object(members) => {
                members.insert(self.last.clone(), value);
            }
            other => *self.element(other, &self.last, self.parents.len())? = value,
        }
        Ok(())
    }

    /// The existing element `token` names in `container`, an array found
    /// after `depth` tokens; an error naming the place for anything else.
    fn element<'a>(
        &self,
        container: &'a mut Value,
        token: &str,
        depth: usize,
    ) -> Result<&'a mut Value, String> {
        match container {
            Value::Array(items) => {
                let len = items.len();
                index(token, len).map(|i| &mut items[i]).ok_or_else(|| {
                    format!(
                        "{} is an array of {len} and {token:?} is not one of its indexes",
                        self.place(depth)
                    )
                })
            }
            other => Err(format!(
                "{} is {}, not an object",
                self.place(depth),
                kind(other)
            )),
        }
    }

    /// The first `depth` tokens as pointer text, or `the data` for none.
    fn place(&self, depth: usize) -> String {
        if depth == 0 {
            return "the data".to_owned();
        }
        self.parents[..depth].iter().map(|t| escape(t)).collect()
    }
}

impl TryFrom<String> for Pointer {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Pointer::parse(&text)
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for token in self.parents.iter().chain([&self.last]) {
            f.write_str(&escape(token))?;
        }
        Ok(())
    }
}

/// One token as pointer text: `/` then the token with `~` and `/` escaped.
fn escape(token: &str) -> String {
    format!("/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// Reads one token of pointer text (between two `/`): `~0` is `~`, `~1` is
/// `/`; `None` for a `~` followed by anything else.
fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next()? {
                '0' => out.push('~'),
                '1' => out.push('/'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// The array index `token` names in an array of `len`: decimal digits
/// without leading zeros, below `len`.
fn index(token: &str, len: usize) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    let canonical = token == "0" || !token.starts_with('0');
    if !(digits && canonical) {
        return None;
    }
    token.parse().ok().filter(|i| *i < len)
}

/// How a value reads in an error message.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use gateway_plugin::json;

    use super::*;

    fn p(text: &str) -> Pointer {
        Pointer::parse(text).unwrap()
    }

    #[test]
    fn parses_and_prints_escapes() {
        let pointer = p("/a~1b/c~0d/");
        assert_eq!(pointer.parents, ["a/b", "c~d"]);
        assert_eq!(pointer.last, "");
        assert_eq!(pointer.to_string(), "/a~1b/c~0d/");
        assert_eq!(p("/~01").last, "~1");
        assert!(p("/~01").parents.is_empty());
    }

    #[test]
    fn refuses_the_root_relative_pointers_and_bad_escapes() {
        for (text, expected) in [
            ("", "must start with `/`"),
            ("amount", "must start with `/`"),
            ("/a~2", "`~` not followed by `0` or `1`"),
            ("/a~", "`~` not followed by `0` or `1`"),
        ] {
            let error = Pointer::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn take_removes_members_keeping_the_order_of_the_rest() {
        let mut data = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4});
        assert_eq!(p("/b/c").take(&mut data), Some(json!(2)));
        assert_eq!(p("/a").take(&mut data), Some(json!(1)));
        assert_eq!(data, json!({"b": {"d": 3}, "e": 4}));
        let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["b", "e"]);
    }

    #[test]
    fn take_finds_nothing_on_missing_paths() {
        let original = json!({"a": "text", "list": [1, 2]});
        let mut data = original.clone();
        for text in [
            "/x", "/x/y", "/a/b", "/list/2", "/list/-", "/list/01", "/list/x",
        ] {
            assert_eq!(p(text).take(&mut data), None, "{text}");
        }
        assert_eq!(data, original);
    }

    #[test]
    fn take_and_insert_reach_into_existing_arrays() {
        let mut data = json!({"items": [{"sku": "A1"}, {"sku": "B2"}, 3]});
        assert_eq!(p("/items/0/sku").take(&mut data), Some(json!("A1")));
        p("/items/0/code").insert(&mut data, json!("A1")).unwrap();
        p("/items/2").insert(&mut data, json!(4)).unwrap();
        assert_eq!(p("/items/1").take(&mut data), Some(json!({"sku": "B2"})));
        assert_eq!(data, json!({"items": [{"code": "A1"}, 4]}));
    }

    #[test]
    fn insert_creates_parents_and_replaces_in_place() {
        let mut data = json!({"a": 1, "b": 2});
        p("/x/y/z").insert(&mut data, json!(true)).unwrap();
        p("/a").insert(&mut data, json!("one")).unwrap();
        assert_eq!(data, json!({"a": "one", "b": 2, "x": {"y": {"z": true}}}));
        let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["a", "b", "x"]);
    }

    #[test]
    fn insert_through_a_non_object_names_the_place() {
        let mut data = json!({"total": 5, "items": [1], "n": null});
        let cases = [
            ("/total/scale", "/total is a number, not an object"),
            ("/n/x/y", "/n is null, not an object"),
            (
                "/items/1",
                "/items is an array of 1 and \"1\" is not one of its indexes",
            ),
            (
                "/items/-/x",
                "/items is an array of 1 and \"-\" is not one of its indexes",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                p(text).insert(&mut data, json!(0)),
                Err(expected.to_owned())
            );
        }
        let mut text = json!("plain");
        assert_eq!(
            p("/a~1b").insert(&mut text, json!(0)),
            Err("the data is a string, not an object".to_owned())
        );
    }
}
