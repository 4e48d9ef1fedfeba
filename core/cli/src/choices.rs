//! The fixed choices that options take, as value enums: `--help` lists them, and clap suggests
//! the nearest one for a typo.

use clap::ValueEnum;
use sixcast::Scope;

/// A multicast scope, as `--scope` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ScopeChoice {
    /// One link; never forwarded by routers.
    Link,
    /// One site.
    Site,
    /// One organization, spanning several sites.
    #[value(alias = "organization")]
    Org,
    /// The whole Internet, where multicast routing allows.
    Global,
}

impl From<ScopeChoice> for Scope {
    fn from(choice: ScopeChoice) -> Self {
        match choice {
            ScopeChoice::Link => Self::Link,
            ScopeChoice::Site => Self::Site,
            ScopeChoice::Org => Self::Organization,
            ScopeChoice::Global => Self::Global,
        }
    }
}

/// An addressing profile, as `--profile` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ProfileChoice {
    /// sixcast's own any-source groups.
    Sixcast,
    /// Source-specific groups (RFC 4607); receivers join per source.
    Ssm,
    /// Groups that carry their rendezvous point's address (RFC 3956); needs `--rp`.
    EmbeddedRp,
    /// Groups and datagrams compatible with Librecast.
    Librecast,
}

impl ProfileChoice {
    /// The profile's name, as the library parses it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Sixcast => "sixcast",
            Self::Ssm => "ssm",
            Self::EmbeddedRp => "embedded-rp",
            Self::Librecast => "librecast",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_choice_is_the_librarys_name() {
        for choice in ScopeChoice::value_variants() {
            let name = choice
                .to_possible_value()
                .expect("a name")
                .get_name()
                .to_owned();
            assert_eq!(
                Scope::from(*choice),
                name.parse::<Scope>().expect("a scope")
            );
        }
        for choice in ProfileChoice::value_variants() {
            let name = choice
                .to_possible_value()
                .expect("a name")
                .get_name()
                .to_owned();
            assert_eq!(choice.name(), name);
            assert!(sixcast::addr::parse_profile(&name, None).is_ok() || name == "embedded-rp");
        }
    }
}
