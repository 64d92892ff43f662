//! Channel promotion: evaluate required contexts on the source branch head and move the
//! target branch (fast-forward) or open/update a promotion pull request.

pub(crate) mod audit;
pub(crate) mod evaluate;
pub(crate) mod flow;
pub(crate) mod github;

pub use evaluate::{Check, Decision, Observed, Reason};
pub use flow::{
    promote, Ancestry, Mode, Outcome, PromoteRequest, PromotionApi, PullRef, RefUpdate,
};
pub use github::GithubPromotionApi;
