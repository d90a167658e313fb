//! The version of our JSON wire formats.

use serde::{Deserialize, Serialize};

/// Version of the JSON formats in this crate that are ours rather than zkSync's
/// ([`crate::l2::WitnessInputData`], [`crate::prover_interface::L1BatchProofForL1`]).
///
/// It deserializes only from the version this build speaks, so a peer on another version fails
/// at the boundary with an error naming both versions instead of somewhere deep in a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct WireVersion(u32);

/// A peer sent a wire format version this build does not speak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported wire format version {got}: this build speaks version {}", WireVersion::CURRENT.0)]
pub struct UnsupportedWireVersion {
    /// The version that was received.
    pub got: u32,
}

impl WireVersion {
    /// The only version this build reads and writes.
    pub const CURRENT: Self = Self(1);

    /// The version number as sent on the wire.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for WireVersion {
    fn default() -> Self {
        Self::CURRENT
    }
}

impl TryFrom<u32> for WireVersion {
    type Error = UnsupportedWireVersion;

    fn try_from(got: u32) -> Result<Self, Self::Error> {
        if got == Self::CURRENT.0 { Ok(Self(got)) } else { Err(UnsupportedWireVersion { got }) }
    }
}

impl From<WireVersion> for u32 {
    fn from(v: WireVersion) -> u32 {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_other_versions_naming_both() {
        assert_eq!(serde_json::from_str::<WireVersion>("1").unwrap(), WireVersion::CURRENT);
        let err = serde_json::from_str::<WireVersion>("2").unwrap_err().to_string();
        assert!(err.contains("unsupported wire format version 2"), "{err}");
        assert!(err.contains("speaks version 1"), "{err}");
    }
}
