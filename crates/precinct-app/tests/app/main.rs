//! `precinct-app`'s tests, one binary (one link per build, which mutation testing
//! pays once per mutant): the application rules given/when/then on a log in memory
//! (`common`: a `MemoryLog`, an `App` on it and the ports answered from it), and
//! `as_of`, which talks to the NATS `make test` starts (the vault keeps its keys in a
//! JetStream bucket), and `vault`, the rules that need the vault too.

mod common;

mod accounts;
mod as_of;
mod attempts;
mod control;
mod devices;
mod dispatch;
mod errors;
mod ids;
mod links;
mod report;
mod sla;
mod stations;
mod users;
mod vault;
mod webhooks;
