//! Field-level validation errors: every problem at once, each naming the field (as a
//! JSON path like `telephony.call_phone_number` or `knowledge_base[2].title`) and the
//! reason.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::values::InvalidValue;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field, e.g. `telephony.call_phone_number`.
    pub field: String,
    /// What is wrong, written for the person who entered the value.
    pub reason: String,
}

/// Every problem found in one input, in field order.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn fields(&self) -> &[FieldError] {
        &self.0
    }

    /// The reason given for `field`, if it was refused.
    pub fn reason_for(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|e| e.field == field).map(|e| e.reason.as_str())
    }

    pub(crate) fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), reason: reason.into() });
    }

    /// Records the error of `result` under `field` and passes the value on.
    pub(crate) fn check<T>(&mut self, field: impl Into<String>, result: Result<T, InvalidValue>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(field, e.0);
                None
            }
        }
    }

    /// Checks that `value` lies in `range`, naming the bounds in the reason.
    pub(crate) fn check_range(&mut self, field: &str, value: u32, range: std::ops::RangeInclusive<u32>, unit: &str) {
        if !range.contains(&value) {
            self.push(field, format!("must be between {} and {} {unit}", range.start(), range.end()));
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.reason)?;
        }
        Ok(())
    }
}
