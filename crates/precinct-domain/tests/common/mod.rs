//! Shared test support: a given/when/then harness that compares typed errors, fixed
//! times and ids, and one sample of every event.

#![allow(dead_code)]

pub mod samples;

use std::fmt::Debug;

use chrono::{DateTime, Duration, TimeZone, Utc};
use precinct_domain::{fold, Aggregate};
use uuid::Uuid;

/// Starts a scenario from a history of events.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let events: Vec<A::Event> = events.into_iter().collect();
    Given {
        state: fold::<A>(&events),
    }
}

/// Starts a scenario from an aggregate that does not exist yet.
pub fn given_nothing<A: Aggregate>() -> Given<A> {
    Given {
        state: A::default(),
    }
}

pub struct Given<A: Aggregate> {
    state: A,
}

impl<A: Aggregate> Given<A> {
    pub fn when(self, cmd: A::Command) -> Then<A> {
        let result = self.state.handle(cmd);
        Then {
            state: self.state,
            result,
        }
    }

    pub fn state(&self) -> &A {
        &self.state
    }
}

pub struct Then<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A> Then<A>
where
    A: Aggregate,
    A::Event: PartialEq,
    A::Error: PartialEq + Debug,
{
    /// Asserts the events; returns the state after applying them.
    #[track_caller]
    pub fn then_events(self, expected: Vec<A::Event>) -> A {
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "unexpected events");
                let mut state = self.state;
                for event in &events {
                    state.apply(event);
                }
                state
            }
            Err(e) => panic!("expected events {expected:?}, got error {e:?}"),
        }
    }

    /// Asserts that the command was accepted without any event (a no-op).
    #[track_caller]
    pub fn then_no_events(self) -> A {
        self.then_events(Vec::new())
    }

    /// Asserts the typed refusal.
    #[track_caller]
    pub fn then_err(self, expected: A::Error) {
        match self.result {
            Ok(events) => panic!("expected error {expected:?}, got events {events:?}"),
            Err(e) => assert_eq!(e, expected, "unexpected error"),
        }
    }

    /// The refusal, whatever it is (panics on events), to inspect further.
    #[track_caller]
    pub fn err(self) -> A::Error {
        match self.result {
            Ok(events) => panic!("expected an error, got events {events:?}"),
            Err(e) => e,
        }
    }

    /// The events, whatever they are (panics on error).
    #[track_caller]
    pub fn events(self) -> Vec<A::Event> {
        match self.result {
            Ok(events) => events,
            Err(e) => panic!("expected events, got error {e:?}"),
        }
    }
}

/// A fixed origin, plus `minutes`.
pub fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0)
        .single()
        .expect("valid date")
        + Duration::minutes(minutes)
}

/// A deterministic UUID from a small number.
pub fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}
