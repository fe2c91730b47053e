//! The harness as one quick test: seeds of every engine scenario under every strategy, and
//! `explore` (with its continuation past a recovery) on two seeds. It is what mutation testing
//! runs against each mutant (`.cargo/mutants.toml`), so a mutant counts as caught only when the
//! simulation catches it. Well under a minute in the `ci` profile.

use std::path::{Path, PathBuf};

use clap::Parser;
use crashpoint::Strategy;
use crashpoint_sim::cli::{Arguments, Command, StrategyChoice};
use crashpoint_sim::driver::{run_seed, SeedOptions};
use crashpoint_sim::explore::{explore, Recording, CONTINUE_STATES_DEFAULT};
use crashpoint_sim::report::replay_command;
use crashpoint_sim::scenario::Scenario;

/// Seeds per scenario and strategy.
const SEEDS: u64 = 8;

/// Every scenario of our engine: the default set and the ones outside it
/// (`checkpoint-triggers`, whose log-space and dirty-bytes triggers nothing else reaches).
/// Other subjects' scenarios run no engine code.
fn scenarios() -> Vec<Scenario> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut scenarios = Scenario::all(&directory).expect("the scenarios load");
    scenarios.retain(|scenario| scenario.subject.is_dedicated());
    scenarios
}

#[test]
fn every_engine_scenario_passes_under_every_strategy() {
    // Proves the engine passes every check of a short sweep: 8 seeds of each of its scenarios
    // under each strategy.
    let mut ran = 0;
    for scenario in scenarios() {
        for strategy in Strategy::ALL {
            let scenario = scenario
                .with_strategy(strategy)
                .expect("every scenario takes every strategy");
            for seed in 0..SEEDS {
                let outcome = run_seed(&scenario.for_seed(seed), seed, &SeedOptions::default());
                assert!(
                    outcome.failure.is_none(),
                    "{} ({strategy}) seed {seed}: {:?}",
                    scenario.name,
                    outcome.failure
                );
                assert!(
                    outcome.states_checked > 0,
                    "{} checked nothing",
                    scenario.name
                );
                ran += 1;
            }
        }
    }
    assert!(ran >= 100, "only {ran} seeds ran");
}

#[test]
fn explore_passes_two_seeds_under_every_strategy() {
    // Proves every crash state explored (and continued past its recovery) on two seeds of the
    // checkpoint-step scenario recovers to the model.
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let base = Scenario::resolve("every-checkpoint-step", &directory).expect("scenario loads");
    for strategy in Strategy::ALL {
        let scenario = base.with_strategy(strategy).expect("takes the strategy");
        for seed in [1, 2] {
            let recording = Recording::new(&scenario, seed, None).expect("seed records");
            let exploration = explore(&recording, 3_000, CONTINUE_STATES_DEFAULT);
            assert!(exploration.states_checked > 0);
            assert!(exploration.second_states_checked > 0, "nothing continued");
            assert_eq!(
                exploration.failed_states,
                0,
                "every-checkpoint-step ({strategy}) seed {seed}: {:?}",
                exploration.failures.first()
            );
        }
    }
}

#[test]
fn strategy_and_step_names_reach_what_they_name() {
    // Proves the names users write reach what they name: a scenario file naming a strategy and
    // one of its steps parses to that strategy and runs, each step is found by its name, and the
    // replay line a failure prints parses back to the same seed and strategy.
    for strategy in Strategy::ALL {
        for step in strategy.steps() {
            let found = strategy.step(step.name).map(|found| found.name);
            assert_eq!(found, Some(step.name), "{strategy}");
        }
        let step = strategy.steps().last().expect("a strategy has steps");
        let text = format!(
            "[engine]\nstrategy = \"{}\"\ncheckpoint_interval_ms = 10\n\n[crash]\nmode = \"step\"\nsteps = [\"{}\"]\n",
            strategy.name(),
            step.name
        );
        let scenario = Scenario::parse(&text, Path::new("named.toml"))
            .unwrap_or_else(|error| panic!("{strategy}: {error}"));
        assert_eq!(scenario.engine.strategy, strategy);
        let outcome = run_seed(&scenario.for_seed(3), 3, &SeedOptions::default());
        assert!(
            outcome.failure.is_none(),
            "{strategy}: {:?}",
            outcome.failure
        );
        assert_eq!(Strategy::from_name(&outcome.strategy), Some(strategy));

        let line = replay_command(&scenario.path, 3, scenario.replay_strategy(), None);
        let (_, command) = line.split_once(" -- ").expect("a cargo run line");
        let words = std::iter::once("crashpoint").chain(command.split(' '));
        let parsed =
            Arguments::try_parse_from(words).unwrap_or_else(|error| panic!("{line}: {error}"));
        let Command::Replay(replay) = parsed.command else {
            panic!("{line} is not a replay");
        };
        assert_eq!(replay.seed, 3, "{line}");
        assert_eq!(
            replay.common.strategy,
            Some(StrategyChoice::One(strategy)),
            "{line}"
        );
    }
}
