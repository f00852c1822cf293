//! For implementors of the ports and for tests (feature `testing`): a [`StubPlatform`] that
//! records calls and can be told how to behave, and conformance suites that every `TokenStore`,
//! `Scheduler` and `Platform` implementation runs.

mod conformance;
mod stub;

pub use conformance::{
    PlatformCase, owner_isolation_conformance, platform_conformance, scheduler_conformance, token_store_conformance,
};
pub use stub::{StubBehavior, StubCall, StubPlatform, StubPost};
