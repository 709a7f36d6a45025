//! Where each finding should stand in Security Hub's workflow, and the one update (if any) that gets it there.
//! Pure: it reads keyaudit's state of a finding and what Security Hub holds for it.
//!
//! Security Hub sets `Workflow` and `Note` from an import only when it creates a finding; later imports cannot
//! change them (AWS's BatchImportFindings documentation), so a finding that is excepted, fixed or whose exception
//! ended after its first import needs `BatchUpdateFindings`. keyaudit moves a finding only to reflect a state of
//! its own:
//! - under an exception → `SUPPRESSED`, with the exception in a `Note` by `keyaudit`;
//! - passing (rotated, deactivated, used again) or gone (deleted, rotated away) → `RESOLVED`;
//! - open (failing or warning, no exception): `NOTIFIED` only when keyaudit itself had suppressed it (its exception
//!   expired or was removed); otherwise left as it is.
//!
//! A person's own decision is left alone unless keyaudit's state contradicts it with a fact of its own: a finding
//! someone suppressed or resolved by hand stays so while it is open (keyaudit never reopens it; Security Hub
//! itself resets a RESOLVED finding to NEW when it fails again), a person's `SUPPRESSED` keeps its note under a
//! keyaudit exception too, and only an exception (→ `SUPPRESSED`) or a fix (→ `RESOLVED`) moves it. A `SUPPRESSED`
//! finding is keyaudit's when its note was written by `keyaudit`.

/// The `Note.UpdatedBy` of every note keyaudit writes: what marks a suppression as keyaudit's own.
pub const UPDATED_BY: &str = "keyaudit";

/// Security Hub's `Workflow.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workflow {
    New,
    Notified,
    Suppressed,
    Resolved,
}

impl Workflow {
    pub fn as_str(self) -> &'static str {
        match self {
            Workflow::New => "NEW",
            Workflow::Notified => "NOTIFIED",
            Workflow::Suppressed => "SUPPRESSED",
            Workflow::Resolved => "RESOLVED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Workflow::New, Workflow::Notified, Workflow::Suppressed, Workflow::Resolved]
            .into_iter()
            .find(|w| w.as_str() == s)
    }
}

/// Why keyaudit resolves a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    /// The finding passes (or its key is inactive).
    Passes,
    /// Its key or user is gone (deleted, or rotated away since the baseline): the finding is archived.
    Gone,
}

/// Where keyaudit's state puts a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired {
    /// Failing or warning, under no exception.
    Open,
    /// Under an exception: the note that says which, why and whose.
    Suppressed(String),
    /// Fixed or gone.
    Resolved(Resolution),
}

/// What Security Hub holds for a finding (GetFindings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubState {
    pub id: String,
    pub workflow: Workflow,
    /// `Note.UpdatedBy`.
    pub note_by: Option<String>,
    /// `Note.Text`.
    pub note_text: Option<String>,
}

impl HubState {
    fn keyaudits_suppression(&self) -> bool {
        self.workflow == Workflow::Suppressed && self.note_by.as_deref() == Some(UPDATED_BY)
    }
}

/// A `BatchUpdateFindings` change: the workflow and the note that says why.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Update {
    pub workflow: Workflow,
    pub note: String,
}

const RESOLVED_PASSES: &str = "keyaudit: resolved: the finding passes now (its key was rotated, deactivated or used)";
const RESOLVED_GONE: &str = "keyaudit: resolved: the key or its user is gone (deleted, or rotated away)";
const EXCEPTION_ENDED: &str =
    "keyaudit: the exception keyaudit had applied no longer covers this finding (expired or removed): open again";

/// Security Hub's limit for `Note.Text`.
const MAX_NOTE: usize = 512;

/// The note of a finding under an exception (at most 512 characters).
pub fn exception_note(entry: &str, owner: &str, expires: &str, reason: &str) -> String {
    let text = format!("keyaudit exception {entry} (owner {owner}, until {expires}): {reason}");
    if text.chars().count() <= MAX_NOTE {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_NOTE - 1).collect();
    cut.push('…');
    cut
}

impl Desired {
    /// The workflow and note an import gives the finding when it creates it.
    pub fn at_creation(&self) -> (Workflow, Option<&str>) {
        match self {
            Desired::Open => (Workflow::New, None),
            Desired::Suppressed(note) => (Workflow::Suppressed, Some(note)),
            Desired::Resolved(_) => (Workflow::Resolved, None),
        }
    }

    /// The update that brings `current` where keyaudit's state puts it, if one is needed.
    pub fn update_for(&self, current: &HubState) -> Option<Update> {
        let to = |workflow, note: &str| Some(Update { workflow, note: note.to_owned() });
        match self {
            Desired::Suppressed(note) => match current.workflow {
                // A person's suppression stands, with the person's note.
                Workflow::Suppressed if !current.keyaudits_suppression() => None,
                Workflow::Suppressed if current.note_text.as_deref() == Some(note) => None,
                _ => to(Workflow::Suppressed, note),
            },
            Desired::Resolved(_) if current.workflow == Workflow::Resolved => None,
            Desired::Resolved(Resolution::Passes) => to(Workflow::Resolved, RESOLVED_PASSES),
            Desired::Resolved(Resolution::Gone) => to(Workflow::Resolved, RESOLVED_GONE),
            Desired::Open if current.keyaudits_suppression() => to(Workflow::Notified, EXCEPTION_ENDED),
            Desired::Open => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(workflow: Workflow, by: Option<&str>, text: Option<&str>) -> HubState {
        HubState { id: "f".into(), workflow, note_by: by.map(str::to_owned), note_text: text.map(str::to_owned) }
    }

    #[test]
    fn keyaudit_moves_a_finding_only_to_reflect_its_own_state_and_never_reopens_a_persons_decision() {
        use Workflow::*;
        let note = "keyaudit exception #1 (owner o, until 2027-01-31): vendor";
        let excepted = Desired::Suppressed(note.into());
        let ours = |w| state(w, Some(UPDATED_BY), Some(note));
        let persons = |w| state(w, Some("arn:aws:iam::1:user/alice"), Some("accepted in the risk register"));
        let plain = |w| state(w, None, None);
        let cases: Vec<(&str, Desired, HubState, Option<Workflow>)> = vec![
            ("excepted since the last run", excepted.clone(), plain(New), Some(Suppressed)),
            ("excepted after keyaudit notified", excepted.clone(), ours(Notified), Some(Suppressed)),
            ("excepted, already ours", excepted.clone(), ours(Suppressed), None),
            (
                "excepted, ours with another reason",
                excepted.clone(),
                state(Suppressed, Some(UPDATED_BY), Some("old")),
                Some(Suppressed),
            ),
            ("excepted, a person suppressed it", excepted.clone(), persons(Suppressed), None),
            (
                "excepted, a person resolved it: the exception is keyaudit's fact",
                excepted,
                persons(Resolved),
                Some(Suppressed),
            ),
            ("exception ended", Desired::Open, ours(Suppressed), Some(Notified)),
            ("open, a person suppressed it", Desired::Open, persons(Suppressed), None),
            ("open, a person resolved it", Desired::Open, persons(Resolved), None),
            ("open, new", Desired::Open, plain(New), None),
            ("open, notified", Desired::Open, ours(Notified), None),
            ("fixed since", Desired::Resolved(Resolution::Passes), plain(New), Some(Resolved)),
            (
                "fixed after keyaudit suppressed it",
                Desired::Resolved(Resolution::Passes),
                ours(Suppressed),
                Some(Resolved),
            ),
            (
                "fixed after a person suppressed it",
                Desired::Resolved(Resolution::Gone),
                persons(Suppressed),
                Some(Resolved),
            ),
            ("fixed, already resolved", Desired::Resolved(Resolution::Gone), persons(Resolved), None),
        ];
        for (name, desired, current, want) in cases {
            let update = desired.update_for(&current);
            assert_eq!(update.as_ref().map(|u| u.workflow), want, "{name}");
            if let Some(u) = update {
                assert!(!u.note.is_empty() && u.note.chars().count() <= MAX_NOTE, "{name}");
            }
        }
    }

    #[test]
    fn an_import_creates_each_finding_where_keyaudit_puts_it_and_long_notes_are_cut() {
        assert_eq!(Desired::Open.at_creation(), (Workflow::New, None));
        assert_eq!(Desired::Resolved(Resolution::Passes).at_creation(), (Workflow::Resolved, None));
        assert_eq!(Desired::Suppressed("n".into()).at_creation(), (Workflow::Suppressed, Some("n")));
        let long = exception_note("#1", "o", "2027-01-31", &"x".repeat(600));
        assert_eq!(long.chars().count(), MAX_NOTE);
        assert!(long.ends_with('…') && long.starts_with("keyaudit exception #1 (owner o, until 2027-01-31): x"));
        for w in ["NEW", "NOTIFIED", "SUPPRESSED", "RESOLVED"] {
            assert_eq!(Workflow::parse(w).map(Workflow::as_str), Some(w));
        }
    }
}
