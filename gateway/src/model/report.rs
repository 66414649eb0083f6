//! What differs between two versions of an event type's schema, as the
//! compatibility check (`crate::contracts::compat`) reports it.

use serde::{Deserialize, Serialize};

/// What differs between the previous schema and the new one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Report {
    /// No breaking change was found.
    pub compatible: bool,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Change {
    pub kind: ChangeKind,
    pub breaking: bool,
    /// Where in the schema (JSON pointer; in the previous schema for a removal).
    pub pointer: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    PropertyRemoved,
    PropertyAdded,
    TypeChanged,
    RequiredAdded,
    RequiredRemoved,
    EnumValuesRemoved,
    EnumValuesAdded,
    AdditionalPropertiesClosed,
    AdditionalPropertiesOpened,
    ConstraintChanged,
}

impl ChangeKind {
    pub fn breaking(self) -> bool {
        matches!(
            self,
            ChangeKind::PropertyRemoved
                | ChangeKind::TypeChanged
                | ChangeKind::RequiredAdded
                | ChangeKind::EnumValuesRemoved
                | ChangeKind::AdditionalPropertiesClosed
                | ChangeKind::ConstraintChanged
        )
    }
}
