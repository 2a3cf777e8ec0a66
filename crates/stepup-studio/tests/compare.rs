//! The comparison of two policy versions (its logic, not its drawing): what a reviewer reads
//! as "no change" must be no change.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests: a failed assertion is the report"
)]

use std::path::Path;

use stepup_studio::studio::{Command, CompareWith, Studio};

const RULES_A: &str = "tenant t {
  operation payout sensitive
  policy payouts \"Confirm this payout.\" {
    when operation == payout
    require aal2 factor webauthn every time
  }
}
application shop of t {
  override policy payouts \"Confirm this payout with your key.\" {
    when operation == payout
    require aal3 factor webauthn every time
  }
}
tenant u {
  operation payout sensitive
  policy payouts \"Confirm this payout.\" {
    when operation == payout
    require aal2 factor webauthn every time
  }
}
";

const TENANT_SCENARIO: &str = "Scenario(name: \"tenant\", tenant: \"t\",
  user: (id: \"a\", enrolled: [sms, webauthn], history: (devices: [\"d\"], countries: {\"FR\": \"2026-11-20T08:00:00Z\"})),
  events: [
    SignIn(at: \"2026-11-27T09:00:00Z\", device: \"d\", ip: \"198.51.100.7\", country: \"FR\", location: (lat: 48.85, lon: 2.35)),
    Operation(at: \"+1m\", name: \"payout\"),
  ])
";

fn write(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// A review's findings: the comparison reduced a decision to its kind and AAL, so a
/// requirement weakened at the same AAL (SMS allowed, no longer `every time`) read as no
/// change; and a scenario one version could not replay (its tenant removed) was left out,
/// with "0 changed decision(s)".
#[test]
fn a_weakened_requirement_and_an_unreplayable_scenario_are_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, sc) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("sc"),
    );
    write(&a, &[("t.policy", RULES_A)]);
    // B: the same AAL with any factor for an hour, and no tenant `u`.
    let weaker = RULES_A.replacen(
        "require aal2 factor webauthn every time",
        "require aal2 factor any for 1h",
        1,
    );
    let weaker = &weaker[..weaker.find("tenant u").unwrap()];
    write(&b, &[("t.policy", weaker)]);
    let other = TENANT_SCENARIO.replace(
        "name: \"tenant\", tenant: \"t\"",
        "name: \"other\", tenant: \"u\"",
    );
    write(
        &sc,
        &[("a_tenant.ron", TENANT_SCENARIO), ("b_other.ron", &other)],
    );

    let mut studio = Studio::open(&a, &sc);
    studio.apply(Command::Compare(CompareWith::Directory(b.clone())));
    let c = studio.comparison.clone().expect("a comparison ran");
    assert_eq!(c.error, None);
    let weakened = c
        .changes
        .iter()
        .find(|ch| ch.scenario.contains("a_tenant") && ch.event == "operation:payout")
        .unwrap_or_else(|| panic!("the weaker requirement is a change: {:#?}", c.changes));
    assert!(
        weakened.before.contains("webauthn every time")
            && weakened.after.contains("sms")
            && weakened.after.contains("for 1h"),
        "{weakened:?}"
    );
    let dropped = c
        .changes
        .iter()
        .find(|ch| ch.scenario.contains("b_other"))
        .unwrap_or_else(|| panic!("the unreplayable scenario is a change: {:#?}", c.changes));
    assert!(dropped.before.starts_with("replayed"), "{dropped:?}");
    assert!(
        dropped.after.starts_with("cannot be replayed"),
        "{dropped:?}"
    );
    // Friction is compared over the scenarios both versions replayed.
    assert_eq!(c.stats_a.events, c.stats_b.events);

    // The same rules on both sides: nothing changes, not even for a scenario neither version
    // replays (a review of the change found it listed as a change).
    let nowhere = TENANT_SCENARIO.replace("tenant: \"t\"", "tenant: \"nowhere\"");
    write(&sc, &[("c_nowhere.ron", &nowhere)]);
    let mut studio = Studio::open(&a, &sc);
    studio.apply(Command::Compare(CompareWith::Directory(a.clone())));
    let same = studio.comparison.clone().unwrap();
    assert!(same.changes.is_empty(), "{:#?}", same.changes);
    // Only the message differs: a change the user reads.
    let worded = dir.path().join("worded");
    write(
        &worded,
        &[(
            "t.policy",
            &RULES_A.replace("Confirm this payout.", "Approve this payout."),
        )],
    );
    studio.apply(Command::Compare(CompareWith::Directory(worded)));
    let c = studio.comparison.clone().unwrap();
    assert!(
        c.changes
            .iter()
            .any(|ch| ch.after.contains("Approve this payout.")),
        "{:#?}",
        c.changes
    );
}
