//! The rules' math on a made-up clock: every test passes explicit instants.

use super::*;

const WINDOW: Duration = Duration::from_secs(60);

fn config() -> AlertConfig {
    AlertConfig {
        denials_threshold: 20,
        denials_window: WINDOW,
        phi_prefixes: vec!["phi.".to_owned()],
        phi_window: WINDOW,
        phi_baseline_windows: 3,
        phi_factor: 3.0,
        phi_min_reads: 20,
        cooldown: Duration::from_secs(300),
        max_principals: 100,
    }
}

fn user(name: &str) -> Principal {
    Principal::new("User", name).unwrap()
}

fn read(topic: &str) -> Action {
    Action::literal(Operation::Read, ResourceType::Topic, topic).unwrap()
}

/// A clock: `at(s)` is `s` seconds after the rules started.
struct Clock(Instant);

impl Clock {
    fn at(&self, secs: f64) -> Instant {
        self.0 + Duration::from_secs_f64(secs)
    }
}

fn rules(config: AlertConfig) -> (Alerts, Clock) {
    let origin = Instant::now();
    (Alerts::starting_at(config, origin), Clock(origin))
}

fn deny(alerts: &Alerts, now: Instant, who: &str, count: u64) {
    alerts.observe_with(|| now, &user(who), &read("orders"), false, count);
}

fn reads(alerts: &Alerts, now: Instant, topic: &str, count: u64) {
    alerts.observe_with(|| now, &user("reader"), &read(topic), true, count);
}

#[test]
fn denials_below_the_threshold_raise_nothing() {
    let (alerts, clock) = rules(config());
    for i in 0..19 {
        deny(&alerts, clock.at(f64::from(i)), "mallory", 1);
    }
    assert_eq!(alerts.fired(Rule::PrincipalDenials), 0);
    assert!(alerts.recent().is_empty());
}

#[test]
fn the_threshold_fires_once_per_episode_not_once_per_denial() {
    let (alerts, clock) = rules(config());
    for i in 0..50 {
        deny(&alerts, clock.at(f64::from(i)), "mallory", 1);
    }
    assert_eq!(alerts.fired(Rule::PrincipalDenials), 1);
    let alert = &alerts.recent()[0];
    assert_eq!(alert.rule, Rule::PrincipalDenials);
    assert_eq!(alert.subject, "User:mallory");
    assert_eq!((alert.count, alert.threshold), (20, 20));
    assert_eq!(alert.window, WINDOW);
}

#[test]
fn principals_are_counted_apart() {
    let (alerts, clock) = rules(config());
    for who in ["a", "b", "c"] {
        deny(&alerts, clock.at(1.0), who, 19);
    }
    assert_eq!(alerts.fired(Rule::PrincipalDenials), 0);
    deny(&alerts, clock.at(2.0), "b", 1);
    assert_eq!(alerts.fired(Rule::PrincipalDenials), 1);
    assert_eq!(alerts.recent()[0].subject, "User:b");
}

#[test]
fn a_folded_report_counts_every_decision_it_stands_for() {
    let (alerts, clock) = rules(config());
    deny(&alerts, clock.at(0.0), "mallory", 20);
    assert_eq!(alerts.fired(Rule::PrincipalDenials), 1);
}

#[test]
fn a_burst_across_a_bucket_boundary_is_seen_whole() {
    let (alerts, clock) = rules(config());
    deny(&alerts, clock.at(0.0), "mallory", 1);
    // 14 more at the end of the first bucket, 6 at the start of the next:
    // estimate = 6 + 15 * (60 - 1) / 60 = 20.75, floored to 20.
    deny(&alerts, clock.at(59.0), "mallory", 14);
    deny(&alerts, clock.at(61.0), "mallory", 6);
    assert_eq!(alerts.fired(Rule::PrincipalDenials), 1);
    assert_eq!(alerts.recent()[0].count, 20);
}

#[test]
fn denials_older_than_the_window_fade_out() {
    let (alerts, clock) = rules(config());
    deny(&alerts, clock.at(0.0), "mallory", 19);
    // Half-way through the next bucket half of them still count: 1 + 9.
    deny(&alerts, clock.at(90.0), "mallory", 1);
    // Two windows later none of them does.
    deny(&alerts, clock.at(125.0), "mallory", 19);
    assert_eq!(alerts.fired(Rule::PrincipalDenials), 0);
}

#[test]
fn a_new_episode_within_the_cooldown_is_silent_and_after_it_fires() {
    let (alerts, clock) = rules(config());
    deny(&alerts, clock.at(0.0), "mallory", 20);
    // The episode ends: a denial seen when the window has emptied.
    deny(&alerts, clock.at(130.0), "mallory", 1);
    deny(&alerts, clock.at(131.0), "mallory", 20);
    assert_eq!(
        alerts.fired(Rule::PrincipalDenials),
        1,
        "within the cooldown"
    );
    deny(&alerts, clock.at(260.0), "mallory", 1);
    deny(&alerts, clock.at(301.0), "mallory", 20);
    assert_eq!(
        alerts.fired(Rule::PrincipalDenials),
        2,
        "after the cooldown"
    );
}

#[test]
fn the_principal_map_never_grows_past_its_cap() {
    let (alerts, clock) = rules(AlertConfig {
        max_principals: 3,
        ..config()
    });
    for who in ["a", "b", "c", "d"] {
        deny(&alerts, clock.at(0.0), who, 1);
    }
    assert_eq!(alerts.tracked_principals(), 3);
    assert_eq!(alerts.untracked_denials(), 1, "`d` could not be tracked");

    // `a`, `b`, `c` are idle after two windows; the sweep makes room.
    deny(&alerts, clock.at(121.0), "e", 20);
    assert_eq!(alerts.tracked_principals(), 1);
    assert_eq!(alerts.fired(Rule::PrincipalDenials), 1);
}

#[test]
fn a_principal_in_its_cooldown_is_not_swept() {
    let (alerts, clock) = rules(AlertConfig {
        max_principals: 1,
        ..config()
    });
    deny(&alerts, clock.at(0.0), "mallory", 20);
    deny(&alerts, clock.at(121.0), "eve", 1);
    assert_eq!(
        alerts.untracked_denials(),
        1,
        "the map holds `mallory`'s cooldown"
    );
    deny(&alerts, clock.at(301.0), "eve", 1);
    assert_eq!(
        alerts.untracked_denials(),
        1,
        "swept once the cooldown is over"
    );
    assert_eq!(alerts.tracked_principals(), 1);
}

#[test]
fn the_sweep_runs_at_most_once_a_second() {
    let (alerts, clock) = rules(AlertConfig {
        max_principals: 1,
        ..config()
    });
    deny(&alerts, clock.at(0.0), "a", 1);
    deny(&alerts, clock.at(200.0), "b", 1);
    assert_eq!(alerts.tracked_principals(), 1, "`a` swept, `b` in");
    deny(&alerts, clock.at(200.5), "c", 1);
    assert_eq!(
        alerts.untracked_denials(),
        1,
        "no second sweep within a second"
    );
}

#[test]
fn the_denial_rule_can_be_turned_off() {
    let (alerts, clock) = rules(AlertConfig {
        denials_threshold: 0,
        ..config()
    });
    deny(&alerts, clock.at(0.0), "mallory", 1000);
    assert_eq!(alerts.fired(Rule::PrincipalDenials), 0);
    assert_eq!(alerts.tracked_principals(), 0);
}

/// Three windows of `per_window` reads of `phi.labs`: the baseline.
fn with_baseline(per_window: u64) -> (Alerts, Clock) {
    let (alerts, clock) = rules(config());
    for window in 0..3 {
        reads(
            &alerts,
            clock.at(60.0 * f64::from(window) + 1.0),
            "phi.labs",
            per_window,
        );
    }
    (alerts, clock)
}

#[test]
fn no_phi_alert_before_a_baseline_exists() {
    let (alerts, clock) = rules(config());
    reads(&alerts, clock.at(1.0), "phi.labs", 10_000);
    assert_eq!(alerts.fired(Rule::PhiReadRise), 0);
}

#[test]
fn phi_reads_over_factor_times_the_baseline_fire_once() {
    // Baseline 10 a window; threshold = max(20, floor(3 * 10) + 1) = 31.
    let (alerts, clock) = with_baseline(10);
    reads(&alerts, clock.at(181.0), "phi.labs", 30);
    assert_eq!(
        alerts.fired(Rule::PhiReadRise),
        0,
        "30 is not more than 3 x 10"
    );
    reads(&alerts, clock.at(182.0), "phi.imaging", 1);
    assert_eq!(alerts.fired(Rule::PhiReadRise), 1);
    reads(&alerts, clock.at(183.0), "phi.labs", 500);
    assert_eq!(alerts.fired(Rule::PhiReadRise), 1, "same episode");
    let alert = &alerts.recent()[0];
    assert_eq!(alert.subject, "phi.");
    assert_eq!((alert.count, alert.threshold), (31, 31));
}

#[test]
fn the_minimum_count_guards_a_quiet_baseline() {
    // Baseline 0: threshold = max(20, 1) = 20.
    let (alerts, clock) = with_baseline(0);
    reads(&alerts, clock.at(181.0), "phi.labs", 19);
    assert_eq!(alerts.fired(Rule::PhiReadRise), 0);
    reads(&alerts, clock.at(182.0), "phi.labs", 1);
    assert_eq!(alerts.fired(Rule::PhiReadRise), 1);
}

#[test]
fn a_phi_episode_lasts_while_whole_windows_stay_over_and_ends_with_a_quiet_one() {
    let (alerts, clock) = rules(AlertConfig {
        cooldown: Duration::ZERO,
        ..config()
    });
    for window in 0..3 {
        reads(&alerts, clock.at(60.0 * f64::from(window)), "phi.a", 10);
    }
    reads(&alerts, clock.at(181.0), "phi.a", 40);
    assert_eq!(alerts.fired(Rule::PhiReadRise), 1);
    // Window 4: the baseline is (10 + 10 + 40) / 3 = 20, threshold 61.
    reads(&alerts, clock.at(241.0), "phi.a", 100);
    assert_eq!(alerts.fired(Rule::PhiReadRise), 1, "the episode goes on");
    // Window 5 is quiet, window 6 rises again: a new episode.
    reads(&alerts, clock.at(301.0), "phi.a", 1);
    reads(&alerts, clock.at(361.0), "phi.a", 1000);
    assert_eq!(alerts.fired(Rule::PhiReadRise), 2);
}

#[test]
fn empty_windows_count_as_zero_in_the_baseline() {
    let (alerts, clock) = with_baseline(100);
    // Ten quiet minutes: the baseline is 0 and 20 reads are a rise.
    reads(&alerts, clock.at(781.0), "phi.labs", 20);
    assert_eq!(alerts.fired(Rule::PhiReadRise), 1);
}

#[test]
fn only_allowed_literal_reads_of_phi_topics_count() {
    let (alerts, clock) = with_baseline(0);
    let now = clock.at(181.0);
    let reader = user("reader");
    let write = Action::literal(Operation::Write, ResourceType::Topic, "phi.labs").unwrap();
    let group = Action::literal(Operation::Read, ResourceType::Group, "phi.labs").unwrap();
    let prefixed = Action::new(
        Operation::Read,
        ResourceType::Topic,
        "phi.",
        PatternType::Prefixed,
    )
    .unwrap();
    for action in [write, group, prefixed, read("orders"), read("xphi.labs")] {
        alerts.observe_with(|| now, &reader, &action, true, 1000);
    }
    alerts.observe_with(|| now, &reader, &read("phi.labs"), false, 1000);
    assert_eq!(alerts.fired(Rule::PhiReadRise), 0);
}

#[test]
fn each_prefix_has_its_own_baseline() {
    let (alerts, clock) = rules(AlertConfig {
        phi_prefixes: vec!["phi.".to_owned(), "pii.".to_owned()],
        ..config()
    });
    for window in 0..3 {
        reads(&alerts, clock.at(60.0 * f64::from(window)), "phi.a", 1000);
    }
    reads(&alerts, clock.at(181.0), "phi.a", 100);
    reads(&alerts, clock.at(181.0), "pii.a", 100);
    assert_eq!(alerts.fired(Rule::PhiReadRise), 1);
    assert_eq!(alerts.recent()[0].subject, "pii.");
}

#[test]
fn the_recent_list_keeps_only_the_newest_alerts() {
    let (alerts, clock) = rules(config());
    for i in 0..(RECENT_ALERTS + 5) {
        deny(&alerts, clock.at(0.0), &format!("p{i}"), 20);
    }
    let recent = alerts.recent();
    assert_eq!(recent.len(), RECENT_ALERTS);
    assert_eq!(recent[0].subject, "User:p5");
    assert_eq!(
        alerts.fired(Rule::PrincipalDenials),
        RECENT_ALERTS as u64 + 5
    );
}

#[test]
fn unusable_configurations_are_refused_by_name() {
    let zero = AlertConfig {
        phi_window: Duration::ZERO,
        ..config()
    };
    assert_eq!(
        zero.validate(),
        Err(AlertConfigError::ZeroWindow("phi_window"))
    );
    let factor = AlertConfig {
        phi_factor: 0.5,
        ..config()
    };
    assert_eq!(factor.validate(), Err(AlertConfigError::Factor(0.5)));
    let prefix = AlertConfig {
        phi_prefixes: vec![String::new()],
        ..config()
    };
    assert_eq!(prefix.validate(), Err(AlertConfigError::EmptyPrefix));
    assert_eq!(AlertConfig::default().validate(), Ok(()));
}
