#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
mod event;
mod job;
mod metrics;
mod plan;
mod record;
mod schedule;
mod scheduler;

#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use clock::WallClock;
pub use event::JobEvent;
pub use job::{CatchUp, Job, JobContext, OnInterrupted, Outcome};
pub use schedule::{Millis, Schedule, ScheduleError, millis, system_time};
pub use scheduler::{JobsError, Scheduler, SchedulerBuilder};
