//! The tasks of a phase: clients issuing transactions and reads, the checkpointer, and the
//! group-commit log sync. Every choice comes from the task's own ChaCha stream.
//!
//! Reads are checked against the live model right when they return: the engine answers a read
//! under its latch and nothing runs between the latch's release and the client's next step, so
//! the live model is exactly the state the read saw.

use std::cell::Cell;
use std::ops::Bound;
use std::rc::Rc;
use std::time::Duration;

use crashpoint::{Engine, Error, Lsn};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::fs::SimFs;
use crate::hub::{now_nanos, Hub, SimClock, TimelineEvent};
use crate::model::{first_difference, show, Model, State};
use crate::outcome::{Failure, FailureKind};
use crate::scenario::{KeyDistribution, Workload};
use crate::schedule::{Operation, ScheduledWrite};

pub type SimEngine = Engine<SimFs, SimClock>;

/// Flags the tasks of one phase share (single-threaded: madsim runs them on one thread).
#[derive(Default)]
pub struct PhaseFlags {
    pub stop: Cell<bool>,
    pub clients_done: Cell<u32>,
    pub transactions: Cell<u64>,
    /// Errors clients saw that end their work (corruption, poison), for the liveness check.
    pub client_errors: std::cell::RefCell<Vec<String>>,
}

pub fn key_name(index: u64) -> Vec<u8> {
    format!("key{index:06}").into_bytes()
}

fn pick_key(rng: &mut ChaCha8Rng, workload: &Workload) -> Vec<u8> {
    let keys = workload.keys.max(1);
    let index = match workload.key_distribution {
        KeyDistribution::Uniform => rng.gen_range(0..keys),
        // 80% of operations go to the hottest 10% of keys.
        KeyDistribution::Skewed => {
            let hot = (keys / 10).max(1);
            if rng.gen_bool(0.8) {
                rng.gen_range(0..hot)
            } else {
                rng.gen_range(0..keys)
            }
        }
    };
    key_name(index)
}

fn make_value(rng: &mut ChaCha8Rng, workload: &Workload, tag: &str) -> Vec<u8> {
    let len = rng
        .gen_range(workload.value_size_min..=workload.value_size_max.max(workload.value_size_min))
        as usize;
    let mut value = tag.as_bytes().to_vec();
    value.truncate(len);
    let start = value.len();
    value.resize(len, 0);
    rng.fill(&mut value[start..]);
    // Lowercase letters keep values printable in reports; the small bias of `% 26` is harmless.
    for byte in &mut value[start..] {
        *byte = b'a' + *byte % 26;
    }
    value
}

/// An error that ends a client's work: the engine can't go on, or the disk is gone.
fn is_terminal(error: &Error, fs: &SimFs) -> bool {
    fs.is_crashed()
        || matches!(
            error,
            Error::Poisoned { .. } | Error::Closed | Error::Corruption { .. }
        )
}

pub struct ClientContext {
    pub id: u32,
    pub phase: u32,
    pub transactions: u32,
    pub workload: Workload,
    pub engine: Rc<SimEngine>,
    pub fs: SimFs,
    pub hub: Hub,
    pub flags: Rc<PhaseFlags>,
    pub rng: ChaCha8Rng,
    /// The index of the crash this phase ends with, for failure reports.
    pub crash_index: Option<u32>,
    /// Operations to run instead of drawing them (a schedule's).
    pub script: Option<Vec<Operation>>,
    /// Record each operation into the hub's schedule.
    pub record: bool,
}

/// Draws the client's next operation from its stream.
fn draw_operation(context: &mut ClientContext, number: u32) -> Operation {
    let tag = (context.phase, context.id, number);
    draw(&mut context.rng, &context.workload, tag)
}

/// Draws one operation of a client from `rng`: the generator the simulator's clients use, and
/// the real-filesystem runs of `bench` and `realcrash` too, so all of them see one workload.
/// `(phase, client, number)` tags the values written, so a report can say who wrote one.
pub fn draw(
    rng: &mut ChaCha8Rng,
    workload: &Workload,
    (phase, client, number): (u32, u32, u32),
) -> Operation {
    let think_us = if workload.think_time_max_ms > 0 {
        rng.gen_range(0..=workload.think_time_max_ms * 1000)
    } else {
        0
    };
    if rng.gen_bool(workload.read_ratio.clamp(0.0, 1.0)) {
        let key = text(pick_key(rng, workload));
        return if rng.gen_bool(0.5) {
            Operation::Get { think_us, key }
        } else {
            Operation::Scan { think_us, key }
        };
    }
    let count = rng.gen_range(workload.writes_min..=workload.writes_max.max(workload.writes_min));
    let writes = (0..count)
        .map(|_| {
            let key = text(pick_key(rng, workload));
            let value = if rng.gen_bool(workload.delete_ratio.clamp(0.0, 1.0)) {
                None
            } else {
                let tag = format!("p{phase}c{client}t{number}-");
                Some(text(make_value(rng, workload, &tag)))
            };
            ScheduledWrite { key, value }
        })
        .collect();
    Operation::Commit { think_us, writes }
}

/// Keys and values are ASCII by construction.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("generated keys and values are ASCII")
}

pub async fn client(mut context: ClientContext) {
    let script = context.script.take();
    let count = script
        .as_ref()
        .map_or(context.transactions, |script| script.len() as u32);
    for number in 0..count {
        if context.flags.stop.get() {
            break;
        }
        let operation = match &script {
            Some(script) => script[number as usize].clone(),
            None => draw_operation(&mut context, number),
        };
        if context.record {
            let key = (context.phase, context.id);
            context
                .hub
                .lock()
                .recorded_operations
                .entry(key)
                .or_default()
                .push(operation.clone());
        }
        if operation.think_us() > 0 {
            madsim::time::sleep(Duration::from_micros(operation.think_us())).await;
        }
        if context.flags.stop.get() {
            break;
        }
        let result = match &operation {
            Operation::Commit { writes, .. } => transaction(&mut context, writes).await,
            Operation::Get { key, .. } => read(&mut context, key, false).await,
            Operation::Scan { key, .. } => read(&mut context, key, true).await,
        };
        if let Err(error) = result {
            if is_terminal(&error, &context.fs) {
                if !context.fs.is_crashed() {
                    context
                        .flags
                        .client_errors
                        .borrow_mut()
                        .push(format!("client {}: {error}", context.id));
                }
                break;
            }
            tracing::debug!(client = context.id, %error, "operation failed");
        }
    }
    context
        .flags
        .clients_done
        .set(context.flags.clients_done.get() + 1);
}

async fn transaction(
    context: &mut ClientContext,
    writes: &[ScheduledWrite],
) -> crashpoint::Result<()> {
    let mut transaction = context.engine.begin();
    for write in writes {
        match &write.value {
            Some(value) => transaction.put(write.key.as_bytes(), value.as_bytes()),
            None => transaction.delete(write.key.as_bytes()),
        }
    }
    let start_nanos = now_nanos();
    let result = transaction.commit().await;
    let mut hub = context.hub.lock();
    hub.note(TimelineEvent::Transaction {
        phase: context.phase,
        client: context.id,
        start_nanos,
        end_nanos: now_nanos(),
        writes: writes.len(),
        result: result
            .as_ref()
            .map(|info| (info.lsn, info.durable))
            .map_err(ToString::to_string),
    });
    let info = result?;
    tracing::debug!(
        client = context.id,
        lsn = %info.lsn,
        durable = info.durable,
        writes = %WritesShown(writes),
        "commit returned"
    );
    context
        .flags
        .transactions
        .set(context.flags.transactions.get() + 1);
    if info.durable {
        hub.model.acknowledged_durable.insert(info.lsn);
        if let Some(failed) = failed_sync_before(&context.fs, &hub.model, info.lsn) {
            tracing::warn!(lsn = %info.lsn, failed, "commit acknowledged durable after a failed fsync");
            hub.model
                .acknowledged_after_fsync_error
                .insert(info.lsn, failed);
        }
    }
    Ok(())
}

/// The failed log fsync, on this disk (so since the engine last recovered), that makes
/// acknowledging the commit at `lsn` durable a broken promise: its record overlaps what the
/// fsync failed to make durable, or lies past where that segment ended then (written later,
/// or in a later segment). A commit made durable before the failure may still return after it.
fn failed_sync_before(fs: &SimFs, model: &Model, lsn: Lsn) -> Option<String> {
    let end = model.record_end(lsn)?;
    fs.failed_syncs().into_iter().find_map(|failed| {
        let start = crate::log_names::redo_segment_start(&failed.file)?;
        let pending = failed.unsynced.iter().any(|&(from, to)| {
            lsn.0 < start.saturating_add(to) && start.saturating_add(from) < end
        });
        let later = lsn.0 >= start.saturating_add(failed.len);
        (pending || later).then(|| format!("fsync of {} at I/O #{}", failed.file, failed.index))
    })
}

/// A commit's writes for a log line, formatted only when the line is printed:
/// `key000020=p2c2t18-, key000031 deleted`, long values cut.
struct WritesShown<'a>(&'a [ScheduledWrite]);

impl std::fmt::Display for WritesShown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 16;
        for (index, write) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            match &write.value {
                Some(value) => match value.char_indices().nth(SHOWN) {
                    Some((cut, _)) => write!(f, "{}={}…", write.key, &value[..cut])?,
                    None => write!(f, "{}={value}", write.key)?,
                },
                None => write!(f, "{} deleted", write.key)?,
            }
        }
        Ok(())
    }
}

async fn read(context: &mut ClientContext, key: &str, scan: bool) -> crashpoint::Result<()> {
    let start_nanos = now_nanos();
    let result = check_read(context, key.as_bytes().to_vec(), scan).await;
    context.hub.lock().note(TimelineEvent::Read {
        phase: context.phase,
        client: context.id,
        start_nanos,
        end_nanos: now_nanos(),
        ok: result.is_ok(),
    });
    result
}

async fn check_read(
    context: &mut ClientContext,
    key: Vec<u8>,
    scan: bool,
) -> crashpoint::Result<()> {
    if !scan {
        let found = context.engine.get(&key).await?;
        let hub = context.hub.lock();
        let expected = hub.model.live.get(&key);
        if found.as_ref() != expected {
            let message = format!(
                "get of key {} returned {}, the model holds {}",
                show(Some(&key)),
                show(found.as_ref()),
                show(expected)
            );
            drop(hub);
            context.hub.fail(Failure {
                kind: FailureKind::Divergence,
                crash_index: context.crash_index,
                message,
            });
        }
    } else {
        let limit = 8;
        let found: State = context
            .engine
            .scan(&key, Bound::Unbounded, limit)
            .await?
            .into_iter()
            .collect();
        let hub = context.hub.lock();
        let expected: State = hub
            .model
            .live
            .range(key.clone()..)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(difference) = first_difference(&expected, &found) {
            drop(hub);
            let message = format!(
                "scan from {} disagrees with the model: {difference}",
                show(Some(&key))
            );
            context.hub.fail(Failure {
                kind: FailureKind::Divergence,
                crash_index: context.crash_index,
                message,
            });
        }
    }
    Ok(())
}

/// What the checkpointer task needs.
pub struct Checkpointer {
    pub engine: Rc<SimEngine>,
    pub flags: Rc<PhaseFlags>,
    pub clients: u32,
    /// How often it polls the triggers (Lealone's loop interval).
    pub poll_interval: Duration,
    /// The chance that a poll requests a forced checkpoint instead.
    pub forced_ratio: f64,
    pub rng: ChaCha8Rng,
    pub fs: SimFs,
    pub hub: Hub,
    /// The crash phase this runs in (None in the quiet phase), for the failures it reports.
    pub crash_index: Option<u32>,
}

/// Runs checkpoints until the clients are done: each poll, a forced one
/// (`request_checkpoint`, now and then, so every crash step gets reached and the promise of
/// a resolved request is checked), else whichever trigger is due.
pub async fn checkpointer(mut task: Checkpointer) {
    let mut forced = 0u64;
    while task.flags.clients_done.get() < task.clients && !task.flags.stop.get() {
        madsim::time::sleep(task.poll_interval).await;
        let result = if task.rng.gen_bool(task.forced_ratio.clamp(0.0, 1.0)) {
            // `checkpoint` and `request_checkpoint` make one promise under two names: they
            // take turns, so both are held to it.
            forced += 1;
            let result = if forced.is_multiple_of(2) {
                task.engine.checkpoint().await
            } else {
                task.engine.request_checkpoint().await
            };
            if let Ok(count) = result {
                let mut hub = task.hub.lock();
                hub.forced_durable = hub.forced_durable.max(count);
                // The count is the checkpoint it made durable: the one whose anchor was
                // written last (checkpoints run one at a time; after a recovery fell back to an
                // older checkpoint, counts start again from there). A count that names another
                // would make the promise checked at the next crash a different one.
                let written = hub.anchor_writes.last().map_or(0, |write| write.checkpoint);
                if count != written {
                    drop(hub);
                    task.hub.fail(Failure {
                        kind: FailureKind::StaleCheckpoint,
                        crash_index: task.crash_index,
                        message: format!(
                            "a forced checkpoint resolved Ok as checkpoint {count}, but the \
                             last anchor written is checkpoint {written}'s"
                        ),
                    });
                }
            }
            result.map(Some)
        } else {
            task.engine.checkpoint_if_due().await
        };
        if let Err(error) = result {
            if is_terminal(&error, &task.fs) {
                break;
            }
        }
    }
}

/// Group commit: one fsync now and then covers every waiting commit. Runs until the clients
/// are done so no commit waits forever.
pub async fn log_syncer(
    engine: Rc<SimEngine>,
    flags: Rc<PhaseFlags>,
    clients: u32,
    interval: Duration,
    fs: SimFs,
) {
    while flags.clients_done.get() < clients {
        madsim::time::sleep(interval).await;
        if let Err(error) = engine.sync_log().await {
            if is_terminal(&error, &fs) {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WritesShown;
    use crate::schedule::ScheduledWrite;

    #[test]
    fn commit_log_lines_show_keys_values_and_deletes() {
        // Proves a reader of `replay -v` sees what each commit wrote, long values cut on a
        // character boundary.
        let writes = [
            ScheduledWrite {
                key: "key000020".into(),
                value: Some("p2c2t18-".into()),
            },
            ScheduledWrite {
                key: "key000031".into(),
                value: None,
            },
            ScheduledWrite {
                key: "key000040".into(),
                value: Some("ééééééééééééééééééé".into()),
            },
        ];
        assert_eq!(
            WritesShown(&writes).to_string(),
            "key000020=p2c2t18-, key000031 deleted, key000040=éééééééééééééééé…"
        );
    }
}
