//! A `mappings {}` entry: one source with weighted (and optionally cluster-scoped)
//! destinations, for canary and A/B splits.
//!
//! Recorded from nats-server 2.15.1: a plain `src: dest` entry is one destination of
//! weight 100. The weights of the destinations that apply must add up to 100 or less;
//! the remainder keeps the original subject (so `[{destination: foo, weight: 50%}]` on
//! `foo` "drops" nothing but maps half). A destination scoped to a cluster applies only
//! on a server of that cluster; when any destination names the local cluster, only
//! those apply, otherwise only the unscoped ones (a server without a cluster uses the
//! unscoped ones).

use super::{MappingError, SubjectTransform};

/// Why a weighted mapping entry was refused; `Display` is nats-server's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightError {
    /// A destination's transform is invalid.
    #[error("Error adding mapping for \"{src}\" to \"{dest}\" : {error}")]
    Transform {
        /// Source subject.
        src: String,
        /// Destination template.
        dest: String,
        /// Why.
        error: MappingError,
    },
    /// The weights of one scope add up to more than 100.
    #[error("Error adding mapping for \"{0}\" : total weight needs to be <= 100")]
    TotalWeight(String),
    /// Two destinations with the same template (and scope).
    #[error("Error adding mapping for \"{src}\" : duplicate entry for \"{dest}\"")]
    Duplicate {
        /// Source subject.
        src: String,
        /// The repeated destination.
        dest: String,
    },
}

/// One destination of a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingDest {
    /// The transform from the mapping's source to this destination.
    pub transform: SubjectTransform,
    /// Share of messages, 0–100.
    pub weight: u8,
    /// Only on servers of this cluster (`None`: everywhere).
    pub cluster: Option<String>,
}

/// A validated `mappings {}` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    src: String,
    dests: Vec<MappingDest>,
}

impl Mapping {
    /// A mapping from `src` to `(dest, weight, cluster)` destinations.
    ///
    /// # Errors
    /// An invalid transform, a duplicate destination or weights above 100 in a scope.
    pub fn new(src: &str, dests: &[(String, u8, Option<String>)]) -> Result<Self, WeightError> {
        let mut out: Vec<MappingDest> = Vec::new();
        for (dest, weight, cluster) in dests {
            let transform =
                SubjectTransform::new(src, dest).map_err(|error| WeightError::Transform {
                    src: src.to_owned(),
                    dest: dest.clone(),
                    error,
                })?;
            if out
                .iter()
                .any(|d| d.transform.dest() == dest && d.cluster == *cluster)
            {
                return Err(WeightError::Duplicate {
                    src: src.to_owned(),
                    dest: dest.clone(),
                });
            }
            out.push(MappingDest {
                transform,
                weight: *weight,
                cluster: cluster.clone(),
            });
        }
        let mut scopes: Vec<&Option<String>> = Vec::new();
        for d in &out {
            if !scopes.contains(&&d.cluster) {
                scopes.push(&d.cluster);
            }
        }
        for scope in scopes {
            let total: u32 = out
                .iter()
                .filter(|d| d.cluster == *scope)
                .map(|d| u32::from(d.weight))
                .sum();
            if total > 100 {
                return Err(WeightError::TotalWeight(src.to_owned()));
            }
        }
        Ok(Self {
            src: src.to_owned(),
            dests: out,
        })
    }

    /// The source filter.
    pub fn src(&self) -> &str {
        &self.src
    }

    /// The destinations.
    pub fn dests(&self) -> &[MappingDest] {
        &self.dests
    }

    /// True when the source filter matches `subject`.
    pub fn matches(&self, subject: &str) -> bool {
        crate::subject::matches(&self.src, subject)
    }

    /// The mapped subject for `subject` on a server of `cluster`, or `None` when the
    /// source does not match or the draw fell in the unmapped remainder. `rand(n)` must
    /// return a number below `n`.
    pub fn select(
        &self,
        subject: &str,
        cluster: Option<&str>,
        rand: &mut dyn FnMut(u32) -> u32,
    ) -> Option<String> {
        if !self.matches(subject) {
            return None;
        }
        let local = |d: &&MappingDest| cluster.is_some() && d.cluster.as_deref() == cluster;
        let scoped = self.dests.iter().any(|d| local(&d));
        let mut applicable = self.dests.iter().filter(|d| {
            if scoped {
                local(d)
            } else {
                d.cluster.is_none()
            }
        });
        let first = applicable.clone().next()?;
        if self.dests.len() == 1 && first.weight == 100 {
            return first.transform.apply(subject, rand);
        }
        let draw = rand(100) % 100;
        let mut acc = 0u32;
        applicable
            .find(|d| {
                acc += u32::from(d.weight);
                draw < acc
            })
            .and_then(|d| d.transform.apply(subject, rand))
    }
}
