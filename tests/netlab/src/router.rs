//! Which multicast router a world's router runs, and running it.
//!
//! Two can forward multicast between the router's legs by the same routes:
//!
//! - smcroute, which installs the routes in the kernel: only on kernels built with IPv6
//!   multicast routing (`/proc/sys/net/ipv6/conf/all/mc_forwarding` exists);
//! - the harness's own user-space router ([`crate::packet_router`]), which needs nothing of the
//!   kernel but packet sockets.
//!
//! The harness takes smcroute where the kernel routes multicast and smcroute is installed, and
//! the user-space router everywhere else; [`MROUTER_ENV`] forces either.

use std::{fmt, path::Path, sync::OnceLock};

use crate::{
    Host, NetlabError, Result, exec,
    mroute::{ForwardingStats, Mroute},
    packet_router::PacketRouter,
    smcroute::{self, Smcroute},
};

/// The environment variable that forces a multicast router: `smcroute`, `user-space`, or `auto`
/// (the default: smcroute where it can work, the user-space router elsewhere).
pub const MROUTER_ENV: &str = "SIXCAST_NETLAB_MROUTER";

/// A program that forwards multicast in a world's router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MulticastRouterKind {
    /// smcroute, installing routes in the kernel's multicast routing table.
    Smcroute,
    /// The harness's user-space router, on packet sockets.
    UserSpace,
}

impl MulticastRouterKind {
    /// `"smcroute"` or `"user-space"`, as [`MROUTER_ENV`] takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Smcroute => "smcroute",
            Self::UserSpace => "user-space",
        }
    }
}

impl fmt::Display for MulticastRouterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The multicast router the harness uses on this machine, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastRouterChoice {
    /// The router.
    pub kind: MulticastRouterKind,
    /// Why: forced by [`MROUTER_ENV`], or what the machine has.
    pub reason: String,
}

impl fmt::Display for MulticastRouterChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind, self.reason)
    }
}

/// The multicast router worlds built now use, by [`MROUTER_ENV`] and what the machine has. An
/// unknown value of the variable is [`NetlabError::InvalidArgument`]; forcing smcroute where it
/// cannot work is [`NetlabError::Unsupported`] or [`NetlabError::MissingTool`].
pub fn multicast_router_choice() -> Result<MulticastRouterChoice> {
    let forced = std::env::var(MROUTER_ENV).ok();
    let smcroute_installed =
        exec::find(exec::SMCROUTED).is_some() && exec::find(exec::SMCROUTECTL).is_some();
    let choice = choose(
        forced.as_deref(),
        smcroute::kernel_routes_multicast(),
        smcroute_installed,
    )?;
    static LOGGED: OnceLock<()> = OnceLock::new();
    LOGGED.get_or_init(|| tracing::info!("test worlds route multicast with {choice}"));
    Ok(choice)
}

/// The choice, given the variable's value and what the machine has.
fn choose(
    forced: Option<&str>,
    kernel_routes_multicast: bool,
    smcroute_installed: bool,
) -> Result<MulticastRouterChoice> {
    let choice = |kind, reason: &str| {
        Ok(MulticastRouterChoice {
            kind,
            reason: reason.to_owned(),
        })
    };
    match forced.map(str::trim).unwrap_or_default() {
        "" | "auto" => match (kernel_routes_multicast, smcroute_installed) {
            (true, true) => choice(
                MulticastRouterKind::Smcroute,
                "the kernel routes IPv6 multicast and smcroute is installed",
            ),
            (true, false) => choice(
                MulticastRouterKind::UserSpace,
                "the kernel routes IPv6 multicast, but smcroute is not installed",
            ),
            (false, _) => choice(
                MulticastRouterKind::UserSpace,
                "the kernel has no IPv6 multicast routing",
            ),
        },
        "smcroute" if !kernel_routes_multicast => Err(NetlabError::Unsupported {
            reason: format!(
                "{MROUTER_ENV}=smcroute, but this kernel has no IPv6 multicast routing \
                 (/proc/sys/net/ipv6/conf/all/mc_forwarding is missing); unset it to use the \
                 user-space router"
            ),
        }),
        "smcroute" if !smcroute_installed => Err(NetlabError::MissingTool {
            tool: exec::SMCROUTED.name,
            package: exec::SMCROUTED.package,
        }),
        "smcroute" => choice(
            MulticastRouterKind::Smcroute,
            &format!("{MROUTER_ENV}=smcroute"),
        ),
        "user-space" => choice(
            MulticastRouterKind::UserSpace,
            &format!("{MROUTER_ENV}=user-space"),
        ),
        other => Err(NetlabError::InvalidArgument(format!(
            "{MROUTER_ENV} must be smcroute, user-space or auto, not {other:?}"
        ))),
    }
}

/// A multicast router running in a world's router, with the routes it was given.
#[derive(Debug)]
pub(crate) struct RunningRouter {
    forwarding: Forwarding,
    pub(crate) routes: Vec<Mroute>,
}

#[derive(Debug)]
enum Forwarding {
    Smcroute(Smcroute),
    UserSpace(PacketRouter),
}

impl RunningRouter {
    /// Starts a router of `kind` in `router` with `routes` and returns once they forward;
    /// smcroute keeps its files in `state_dir` under identity `ident`.
    pub(crate) fn start(
        kind: MulticastRouterKind,
        router: &Host,
        routes: Vec<Mroute>,
        state_dir: &Path,
        ident: &str,
    ) -> Result<Self> {
        let forwarding = match kind {
            MulticastRouterKind::Smcroute => {
                Forwarding::Smcroute(Smcroute::start(router, &routes, state_dir, ident)?)
            }
            MulticastRouterKind::UserSpace => {
                Forwarding::UserSpace(PacketRouter::start(router, &routes)?)
            }
        };
        Ok(Self { forwarding, routes })
    }

    pub(crate) fn kind(&self) -> MulticastRouterKind {
        match self.forwarding {
            Forwarding::Smcroute(_) => MulticastRouterKind::Smcroute,
            Forwarding::UserSpace(_) => MulticastRouterKind::UserSpace,
        }
    }

    /// smcroute's pid (`None` for the user-space router, which is a thread of this process).
    pub(crate) fn smcroute_pid(&self) -> Option<u32> {
        match &self.forwarding {
            Forwarding::Smcroute(smcroute) => Some(smcroute.pid()),
            Forwarding::UserSpace(_) => None,
        }
    }

    /// What the user-space router counted (`None` for smcroute).
    pub(crate) fn stats(&self) -> Option<ForwardingStats> {
        match &self.forwarding {
            Forwarding::Smcroute(_) => None,
            Forwarding::UserSpace(router) => Some(router.stats()),
        }
    }

    /// Whether it still forwards (smcroute may have died).
    pub(crate) fn is_running(&mut self) -> bool {
        match &mut self.forwarding {
            Forwarding::Smcroute(smcroute) => smcroute.is_running(),
            Forwarding::UserSpace(router) => router.is_running(),
        }
    }

    /// Stops forwarding; nothing is forwarded once this returns.
    pub(crate) fn stop(self, router: &Host) -> Result<()> {
        match self.forwarding {
            Forwarding::Smcroute(smcroute) => smcroute.stop(router),
            Forwarding::UserSpace(packet_router) => packet_router.stop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_choice_follows_the_machine() {
        for forced in [None, Some(""), Some("auto")] {
            let kind = |kernel, installed| choose(forced, kernel, installed).unwrap().kind;
            assert_eq!(kind(true, true), MulticastRouterKind::Smcroute);
            assert_eq!(kind(true, false), MulticastRouterKind::UserSpace);
            assert_eq!(kind(false, true), MulticastRouterKind::UserSpace);
            assert_eq!(kind(false, false), MulticastRouterKind::UserSpace);
        }
        let reason = choose(None, false, true).unwrap().to_string();
        assert_eq!(
            reason,
            "user-space (the kernel has no IPv6 multicast routing)"
        );
    }

    #[test]
    fn the_variable_forces_either_or_says_why_not() {
        let forced = |value, kernel, installed| choose(Some(value), kernel, installed);
        assert_eq!(
            forced("user-space", true, true).unwrap().kind,
            MulticastRouterKind::UserSpace
        );
        assert_eq!(
            forced(" smcroute ", true, true).unwrap().kind,
            MulticastRouterKind::Smcroute
        );
        let no_kernel = forced("smcroute", false, true).unwrap_err();
        assert!(no_kernel.is_environment_problem());
        assert!(
            no_kernel.to_string().contains("no IPv6 multicast routing"),
            "{no_kernel}"
        );
        assert!(matches!(
            forced("smcroute", true, false),
            Err(NetlabError::MissingTool {
                tool: "smcrouted",
                ..
            })
        ));
        for bad in ["userspace", "kernel", "SMCROUTE"] {
            let err = forced(bad, true, true).unwrap_err();
            assert!(
                matches!(err, NetlabError::InvalidArgument(_)),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(MROUTER_ENV), "{err}");
        }
    }
}
