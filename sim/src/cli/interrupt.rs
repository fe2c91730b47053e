//! SIGINT (Ctrl-C) and SIGTERM during `run`: the first asks the run to stop after the seeds in
//! flight and report what ran; a second ends the process at once with exit code 130, for a
//! seed that will not finish.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

use super::EXIT_INTERRUPTED;

/// Whether a stop was asked for since [`install`].
#[derive(Clone)]
pub struct StopRequest {
    flag: Arc<AtomicBool>,
}

impl StopRequest {
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// The flag the handlers set. Handlers are registered once per process (a test may run many
/// commands in one), and each install starts from no request.
static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers (once) and returns a request that is unset now.
pub fn install() -> anyhow::Result<StopRequest> {
    let flag = match FLAG.get() {
        Some(flag) => flag.clone(),
        None => {
            let flag = Arc::new(AtomicBool::new(false));
            for signal in [SIGINT, SIGTERM] {
                // In this order: the exit runs only when the flag is already set, i.e. on the
                // second signal; the first only sets it.
                flag::register_conditional_shutdown(signal, EXIT_INTERRUPTED, flag.clone())
                    .and_then(|_| flag::register(signal, flag.clone()))
                    .context("cannot install the SIGINT and SIGTERM handlers")?;
            }
            FLAG.get_or_init(|| flag).clone()
        }
    };
    flag.store(false, Ordering::SeqCst);
    Ok(StopRequest { flag })
}
