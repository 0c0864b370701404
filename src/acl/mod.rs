//! Access control, as Nomad does it: tokens (a secret the client sends; stored only as a
//! hash), policies (rules in Nomad's policy language, plus Dispatch's `job` blocks), and the
//! rights (`Grants`) a token's policies add up to. Pure: no I/O, no HTTP. The API's edge
//! (`api::auth`) resolves the token of every request and asks `Grants` before any handler
//! runs; the state keeps tokens and policies (`state::acl`) durable through the writer.

pub mod grants;
pub mod policy;
pub mod token;

pub use grants::Grants;
pub use policy::{Level, PolicyError, Rules};
pub use token::{Policy, Token};
