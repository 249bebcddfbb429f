//! `sightline demo`: a simulated provincial finance cloud (`estate`) that sends real OTLP
//! traces, metrics and logs through a Sightline server's public ingest ports (`sim`),
//! declares its applications, owners and criticality through the inventory API, and injects
//! faults on a schedule or on command, recording their ground truth (`faults`); `run` drives
//! it in real time.

pub mod estate;
pub mod faults;
pub mod run;
pub mod sim;
