//! Who made a change, as the audit log records it: the operator, or an API
//! key (by id and name, never the key).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// `operator` or `api_key`.
    pub kind: String,
    /// The key's id (`key_...`), for a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The key's name, for a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
}

impl Actor {
    pub fn operator() -> Actor {
        Actor {
            kind: "operator".into(),
            key_id: None,
            key_name: None,
        }
    }

    pub fn key(id: &str, name: &str) -> Actor {
        Actor {
            kind: "api_key".into(),
            key_id: Some(id.to_string()),
            key_name: Some(name.to_string()),
        }
    }
}
