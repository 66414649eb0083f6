//! What an API key may do: one scope per kind of route, and the set a key
//! holds. A route declares the scope it needs in its OpenAPI security
//! requirement and takes it with `api::Access<S>`.

use serde::{Deserialize, Serialize};

/// One permission. Reads and writes are apart for each kind of object
/// that has both; `keys:manage` covers keys and portal tokens.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Scope {
    #[serde(rename = "events:write")]
    EventsWrite,
    #[serde(rename = "events:read")]
    EventsRead,
    #[serde(rename = "endpoints:read")]
    EndpointsRead,
    #[serde(rename = "endpoints:write")]
    EndpointsWrite,
    #[serde(rename = "attempts:read")]
    AttemptsRead,
    #[serde(rename = "consumers:read")]
    ConsumersRead,
    #[serde(rename = "consumers:write")]
    ConsumersWrite,
    #[serde(rename = "plugins:read")]
    PluginsRead,
    #[serde(rename = "plugins:write")]
    PluginsWrite,
    #[serde(rename = "event-types:read")]
    EventTypesRead,
    #[serde(rename = "event-types:write")]
    EventTypesWrite,
    #[serde(rename = "settings:read")]
    SettingsRead,
    #[serde(rename = "settings:write")]
    SettingsWrite,
    #[serde(rename = "keys:manage")]
    KeysManage,
    #[serde(rename = "audit:read")]
    AuditRead,
}

impl Scope {
    pub const ALL: [Scope; 15] = [
        Scope::EventsWrite,
        Scope::EventsRead,
        Scope::EndpointsRead,
        Scope::EndpointsWrite,
        Scope::AttemptsRead,
        Scope::ConsumersRead,
        Scope::ConsumersWrite,
        Scope::PluginsRead,
        Scope::PluginsWrite,
        Scope::EventTypesRead,
        Scope::EventTypesWrite,
        Scope::SettingsRead,
        Scope::SettingsWrite,
        Scope::KeysManage,
        Scope::AuditRead,
    ];

    /// What a key limited to one consumer may hold: that consumer's
    /// endpoints, their attempts and dead letters, and the event types to
    /// subscribe them to.
    pub const FOR_CONSUMER: [Scope; 4] = [
        Scope::EndpointsRead,
        Scope::EndpointsWrite,
        Scope::AttemptsRead,
        Scope::EventTypesRead,
    ];

    /// Its name as the API spells it (`endpoints:write`).
    pub fn name(self) -> &'static str {
        match self {
            Scope::EventsWrite => "events:write",
            Scope::EventsRead => "events:read",
            Scope::EndpointsRead => "endpoints:read",
            Scope::EndpointsWrite => "endpoints:write",
            Scope::AttemptsRead => "attempts:read",
            Scope::ConsumersRead => "consumers:read",
            Scope::ConsumersWrite => "consumers:write",
            Scope::PluginsRead => "plugins:read",
            Scope::PluginsWrite => "plugins:write",
            Scope::EventTypesRead => "event-types:read",
            Scope::EventTypesWrite => "event-types:write",
            Scope::SettingsRead => "settings:read",
            Scope::SettingsWrite => "settings:write",
            Scope::KeysManage => "keys:manage",
            Scope::AuditRead => "audit:read",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The scopes a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u32);

impl Scopes {
    pub fn all() -> Scopes {
        Scopes::of(&Scope::ALL)
    }

    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |bits, s| bits | s.bit()))
    }

    pub fn has(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether it holds every scope `other` holds.
    pub fn covers(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }

    /// Its scopes, in the order of [`Scope::ALL`].
    pub fn list(self) -> Vec<Scope> {
        Scope::ALL.into_iter().filter(|s| self.has(*s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_parses_back_from_its_name_and_serialises_as_it() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.name()));
        }
        assert_eq!(Scope::parse("events"), None);
    }

    #[test]
    fn a_set_holds_what_it_was_made_of() {
        let set = Scopes::of(&[Scope::EventsWrite, Scope::AuditRead]);
        assert!(set.has(Scope::EventsWrite) && set.has(Scope::AuditRead));
        assert!(!set.has(Scope::KeysManage));
        assert_eq!(set.list(), vec![Scope::EventsWrite, Scope::AuditRead]);
        assert!(Scopes::all().covers(set));
        assert!(!set.covers(Scopes::all()));
        assert_eq!(Scopes::all().list().len(), Scope::ALL.len());
    }
}
