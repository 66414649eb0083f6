//! The data rewrite the config describes: its `moves` in order, then its
//! `remove` list, then its `set` entries, each step seeing the data as the
//! previous one left it.

use gateway_plugin::Value;
use gateway_plugin::serde_json::Map;
use serde::Deserialize;

use crate::pointer::Pointer;

/// A `moves` entry: take the value at `from` out and write it at `to`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Move {
    /// Where the value is taken from.
    from: Pointer,
    /// Where it is written (missing parents are created, a value already
    /// there is replaced).
    to: Pointer,
    /// Whether a missing `from` is an error rather than a skipped move.
    #[serde(default)]
    required: bool,
}

/// The `set` entries, `{"/pointer": value, ...}`, in the config's order.
#[derive(Debug, Default, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct Sets(Vec<(Pointer, Value)>);

impl TryFrom<Map<String, Value>> for Sets {
    type Error = String;

    fn try_from(entries: Map<String, Value>) -> Result<Self, Self::Error> {
        entries
            .into_iter()
            .map(|(pointer, value)| Ok((Pointer::parse(&pointer)?, value)))
            .collect::<Result<_, String>>()
            .map(Sets)
    }
}

/// What a rewrite did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Moves whose `from` was found.
    pub moved: usize,
    /// Moves skipped because their `from` was missing.
    pub skipped: usize,
    /// `remove` pointers that found something.
    pub removed: usize,
    /// `set` entries written.
    pub set: usize,
}

/// Rewrites `data`: the moves, then the removals, then the sets. The error
/// names the step and the place (e.g. `set /total/scale: /total is a number,
/// not an object`); `data` is then partly rewritten and should be dropped.
pub fn rewrite(
    data: &mut Value,
    moves: &[Move],
    remove: &[Pointer],
    sets: &Sets,
) -> Result<Counts, String> {
    let mut counts = Counts::default();
    for Move { from, to, required } in moves {
        match from.take(data) {
            Some(value) => {
                to.insert(data, value)
                    .map_err(|e| format!("move {from} to {to}: {e}"))?;
                counts.moved += 1;
            }
            None if *required => {
                return Err(format!("move {from} to {to}: the data has no {from}"));
            }
            None => counts.skipped += 1,
        }
    }
    for pointer in remove {
        if pointer.take(data).is_some() {
            counts.removed += 1;
        }
    }
    for (pointer, value) in &sets.0 {
        pointer
            .insert(data, value.clone())
            .map_err(|e| format!("set {pointer}: {e}"))?;
        counts.set += 1;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use gateway_plugin::json;

    use super::*;

    /// Runs the `moves`, `remove` and `set` of `config` on `data`.
    fn run(config: Value, mut data: Value) -> Result<(Value, Counts), String> {
        #[derive(Deserialize)]
        struct Steps {
            #[serde(default)]
            moves: Vec<Move>,
            #[serde(default)]
            remove: Vec<Pointer>,
            #[serde(default)]
            set: Sets,
        }
        let steps = Steps::deserialize(&config).map_err(|e| e.to_string())?;
        let counts = rewrite(&mut data, &steps.moves, &steps.remove, &steps.set)?;
        Ok((data, counts))
    }

    #[test]
    fn moves_then_removes_then_sets() {
        let config = json!({
            "moves": [
                {"from": "/amount/value", "to": "/total/minor_units"},
                {"from": "/missing", "to": "/elsewhere"},
            ],
            "remove": ["/amount", "/legacy", "/not/there"],
            "set": {"/total/scale": 2, "/total/minor_units": 0, "/meta/source": "v2"},
        });
        let data = json!({"amount": {"value": 1250}, "legacy": true, "order_id": "ord_1"});
        let (data, counts) = run(config, data).unwrap();
        assert_eq!(
            data,
            json!({
                "order_id": "ord_1",
                "total": {"minor_units": 0, "scale": 2},
                "meta": {"source": "v2"},
            })
        );
        assert_eq!(
            counts,
            Counts {
                moved: 1,
                skipped: 1,
                removed: 2,
                set: 3
            }
        );
    }

    #[test]
    fn moves_run_in_order_and_may_nest_under_their_source() {
        let config = json!({"moves": [
            {"from": "/a", "to": "/a/inner"},
            {"from": "/a/inner/x", "to": "/x"},
        ]});
        let (data, _) = run(config, json!({"a": {"x": 1, "y": 2}})).unwrap();
        assert_eq!(data, json!({"a": {"inner": {"y": 2}}, "x": 1}));
    }

    #[test]
    fn a_required_move_with_nothing_to_move_is_an_error() {
        let config =
            json!({"moves": [{"from": "/amount/value", "to": "/total", "required": true}]});
        assert_eq!(
            run(config, json!({"amount": {}})).unwrap_err(),
            "move /amount/value to /total: the data has no /amount/value"
        );
    }

    #[test]
    fn writing_through_a_non_object_names_the_step_and_place() {
        let config = json!({"set": {"/total/scale": 2}});
        assert_eq!(
            run(config, json!({"total": 1250})).unwrap_err(),
            "set /total/scale: /total is a number, not an object"
        );
        let config = json!({"moves": [{"from": "/a", "to": "/b/c~1d"}]});
        assert_eq!(
            run(config, json!({"a": 1, "b": "x"})).unwrap_err(),
            "move /a to /b/c~1d: /b is a string, not an object"
        );
    }

    #[test]
    fn bad_pointers_and_keys_are_refused() {
        for (config, expected) in [
            (
                json!({"moves": [{"from": "a", "to": "/b"}]}),
                "pointer \"a\" must start with `/`",
            ),
            (
                json!({"moves": [{"from": "/a", "to": "/b", "optional": true}]}),
                "unknown field `optional`",
            ),
            (json!({"moves": [{"from": "/a"}]}), "missing field `to`"),
            (
                json!({"remove": ["/a~"]}),
                "pointer \"/a~\" has a `~` not followed by `0` or `1`",
            ),
            (
                json!({"set": {"total": 1}}),
                "pointer \"total\" must start with `/`",
            ),
        ] {
            let error = run(config.clone(), json!({})).unwrap_err();
            assert!(error.contains(expected), "{config}: {error}");
        }
    }
}
