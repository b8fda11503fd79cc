//! Who may do what with a connection: one pure function, decided on the server, tested as a table.
//!
//! Rules (docs/behaviour.md): R1.3, R2.1, R3.2–R3.4 (who is prompted to authorize an unauthorized
//! connection, who is told to contact an admin), R11.1 (datasources are for super admins, admins
//! and developers) and R3.5 (a logged-in-user connection used in datasources or schedules needs
//! the admin's primary account first).
//! Calls to a third party: a raw call whose method and URL the caller chooses (the script
//! editor's "Test") is for builders only; everyone else reaches a service only through the
//! components builders wrote, over admin and system connections once they are authorized
//! (R3.2: users "access the form" after the admin authorized it) and over logged-in-user
//! connections with their own account.

use crate::domain::{ConnectionType, Environment, Role};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// See the connection in the connections panel.
    View,
    /// Give the connection its (first) authorization, switch it or reauthorize it.
    Authorize,
    /// Revoke the authorization.
    Revoke,
    /// Open a component that uses the connection while it is not authorized.
    UseUnauthorized,
    /// Create connections and connectors, edit them, change application access (Microservices).
    Manage,
    /// See, configure and sync the datasources associated with a connection.
    ManageDatasources,
    /// Send a request whose method, URL, headers and body the caller chooses, with the
    /// connection's credentials (the raw `invoke_url`, the script editor's "Test").
    InvokeRaw,
    /// Use the connection through a component a builder wrote (`run_component`): the call is
    /// the builder's, only its result reaches the caller. Whether the connection is authorized
    /// is a separate question ([`Action::UseUnauthorized`]).
    UseInComponent,
    /// See every user's authorization of a logged-in-user connection and revoke one of them
    /// (everyone sees and revokes their own through [`Action::View`] and [`Action::Revoke`]).
    OthersAuthorizations,
}

impl Action {
    pub const ALL: [Action; 9] = [
        Action::View,
        Action::Authorize,
        Action::Revoke,
        Action::UseUnauthorized,
        Action::Manage,
        Action::ManageDatasources,
        Action::InvokeRaw,
        Action::UseInComponent,
        Action::OthersAuthorizations,
    ];
}

/// Facts about the connection that change the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// A logged-in-user connection used by a datasource or a schedule (R3.5).
    pub used_in_datasource_or_schedule: bool,
    /// An admin has authorized the connection and configured its primary account.
    pub primary_account_configured: bool,
}

/// Who a person should contact when they may not authorize a connection themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Contact {
    Admin,
    AdminOrSuperAdmin,
}

impl Contact {
    /// What to tell someone who may not authorize `connection` (its display name) themselves.
    pub fn message(self, connection: &str) -> String {
        format!("{connection} is not authorized yet. Contact {} to authorize it.", self.whom())
    }

    /// Whom to ask ("your admin", "your admin or super admin").
    pub fn whom(self) -> &'static str {
        match self {
            Contact::Admin => "your admin",
            Contact::AdminOrSuperAdmin => "your admin or super admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// The action may be carried out.
    Allowed,
    /// Show the authorization prompt (for [`Action::UseUnauthorized`]).
    Prompt,
    /// Not this person: tell them whom to ask.
    ContactAdmin(Contact),
    /// Not visible or not permitted at all.
    Denied,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        matches!(self, Decision::Allowed | Decision::Prompt)
    }
}

/// Decides what `role` may do with a connection of type `kind`.
pub fn decide(role: Role, kind: ConnectionType, action: Action, cx: Context) -> Decision {
    use ConnectionType as T;
    use Decision::*;
    use Role::*;

    let builder = role.is_builder();
    let admin = matches!(role, SuperAdmin | Admin);
    let waits_for_primary =
        kind == T::LoggedInUser && cx.used_in_datasource_or_schedule && !cx.primary_account_configured && !admin;

    match action {
        Action::Manage | Action::ManageDatasources | Action::InvokeRaw => {
            if builder {
                Allowed
            } else {
                Denied
            }
        }
        Action::View => match kind {
            T::LoggedInUser => Allowed,
            T::System | T::Admin if builder => Allowed,
            _ => Denied,
        },
        Action::Authorize | Action::UseUnauthorized => {
            let yes = if action == Action::Authorize { Allowed } else { Prompt };
            match kind {
                T::Admin if admin => yes,
                T::Admin => ContactAdmin(Contact::Admin),
                T::System if builder => yes,
                T::System => ContactAdmin(Contact::AdminOrSuperAdmin),
                T::LoggedInUser if waits_for_primary => ContactAdmin(Contact::Admin),
                T::LoggedInUser => yes,
            }
        }
        Action::Revoke => match kind {
            T::Admin if admin => Allowed,
            T::System if builder => Allowed,
            T::LoggedInUser => Allowed,
            _ => Denied,
        },
        // Every role may use every type through a builder's component: admin and system
        // connections carry the admin's credentials on the builder's calls, logged-in-user
        // connections the caller's own account.
        Action::UseInComponent => match kind {
            T::Admin | T::System | T::LoggedInUser => Allowed,
        },
        // Only logged-in-user connections have one authorization per user; admins and super
        // admins oversee them, developers and users see their own only.
        Action::OthersAuthorizations => match kind {
            T::LoggedInUser if admin => Allowed,
            _ => Denied,
        },
    }
}

/// The environment a call over a connection uses. Builders test against the environment they
/// pick (production when they pick none); everyone else works in production only, whatever a
/// request says (live mode is the production application).
pub fn environment(role: Role, requested: Option<Environment>) -> Environment {
    match requested {
        Some(env) if role.is_builder() => env,
        _ => Environment::Production,
    }
}

/// Workspace-wide actions that concern no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceAction {
    /// Create, list and revoke the workspace's API keys (they act for the whole workspace).
    ManageApiKeys,
    /// Register, test and remove the workspace's webhook endpoints (they learn of every
    /// connection's health): builders, who manage connections.
    ManageWebhooks,
    /// Export an application's connections and import an export (environment promotion): it
    /// creates connections and custom connectors, so it is for builders (R1.3).
    PromoteConnections,
}

/// Decides a workspace-wide action: API keys are for admins and super admins; webhooks and
/// promotion (export and import of connections) for builders.
pub fn decide_workspace(role: Role, action: WorkspaceAction) -> bool {
    match action {
        WorkspaceAction::ManageApiKeys => matches!(role, Role::SuperAdmin | Role::Admin),
        WorkspaceAction::ManageWebhooks | WorkspaceAction::PromoteConnections => role.is_builder(),
    }
}

/// The roles a host product may give its end users through a connect session: every role but
/// super admin, which only this platform grants.
pub fn host_may_grant(role: Role) -> bool {
    !matches!(role, Role::SuperAdmin)
}

#[cfg(test)]
mod tests {
    use super::*;
    const SYSTEM: ConnectionType = ConnectionType::System;
    const ADMIN_CONN: ConnectionType = ConnectionType::Admin;
    const USER_CONN: ConnectionType = ConnectionType::LoggedInUser;
    use Decision::*;
    use Role::*;

    const PLAIN: Context = Context { used_in_datasource_or_schedule: false, primary_account_configured: false };

    /// Every role × connection type × action, written out so a reviewer can check it against the
    /// seed line by line.
    #[test]
    fn table() {
        use Action as A;
        let ca = ContactAdmin(Contact::Admin);
        let cas = ContactAdmin(Contact::AdminOrSuperAdmin);
        #[rustfmt::skip]
        let table: &[(Role, ConnectionType, Action, Decision)] = &[
            // R2.1: builders see every type, other users only logged-in-user connections.
            (SuperAdmin, SYSTEM, A::View, Allowed), (SuperAdmin, ADMIN_CONN, A::View, Allowed), (SuperAdmin, USER_CONN, A::View, Allowed),
            (Role::Admin, SYSTEM, A::View, Allowed), (Role::Admin, ADMIN_CONN, A::View, Allowed), (Role::Admin, USER_CONN, A::View, Allowed),
            (Developer, SYSTEM, A::View, Allowed), (Developer, ADMIN_CONN, A::View, Allowed), (Developer, USER_CONN, A::View, Allowed),
            (User, SYSTEM, A::View, Denied), (User, ADMIN_CONN, A::View, Denied), (User, USER_CONN, A::View, Allowed),
            // R3.2–R3.4: who is prompted when a component uses an unauthorized connection.
            (SuperAdmin, ADMIN_CONN, A::UseUnauthorized, Prompt), (Role::Admin, ADMIN_CONN, A::UseUnauthorized, Prompt),
            (Developer, ADMIN_CONN, A::UseUnauthorized, ca), (User, ADMIN_CONN, A::UseUnauthorized, ca),
            (SuperAdmin, SYSTEM, A::UseUnauthorized, Prompt), (Role::Admin, SYSTEM, A::UseUnauthorized, Prompt),
            (Developer, SYSTEM, A::UseUnauthorized, Prompt), (User, SYSTEM, A::UseUnauthorized, cas),
            (SuperAdmin, USER_CONN, A::UseUnauthorized, Prompt), (Role::Admin, USER_CONN, A::UseUnauthorized, Prompt),
            (Developer, USER_CONN, A::UseUnauthorized, Prompt), (User, USER_CONN, A::UseUnauthorized, Prompt),
            // R4.1: authorizing (and switching) follows the same split.
            (SuperAdmin, ADMIN_CONN, A::Authorize, Allowed), (Role::Admin, ADMIN_CONN, A::Authorize, Allowed),
            (Developer, ADMIN_CONN, A::Authorize, ca), (User, ADMIN_CONN, A::Authorize, ca),
            (SuperAdmin, SYSTEM, A::Authorize, Allowed), (Role::Admin, SYSTEM, A::Authorize, Allowed),
            (Developer, SYSTEM, A::Authorize, Allowed), (User, SYSTEM, A::Authorize, cas),
            (SuperAdmin, USER_CONN, A::Authorize, Allowed), (Role::Admin, USER_CONN, A::Authorize, Allowed),
            (Developer, USER_CONN, A::Authorize, Allowed), (User, USER_CONN, A::Authorize, Allowed),
            // R4.3: revoking, by those who may authorize.
            (SuperAdmin, ADMIN_CONN, A::Revoke, Allowed), (Role::Admin, ADMIN_CONN, A::Revoke, Allowed),
            (Developer, ADMIN_CONN, A::Revoke, Denied), (User, ADMIN_CONN, A::Revoke, Denied),
            (SuperAdmin, SYSTEM, A::Revoke, Allowed), (Role::Admin, SYSTEM, A::Revoke, Allowed),
            (Developer, SYSTEM, A::Revoke, Allowed), (User, SYSTEM, A::Revoke, Denied),
            (SuperAdmin, USER_CONN, A::Revoke, Allowed), (User, USER_CONN, A::Revoke, Allowed),
            // R1.3: only super admins, admins and developers create and manage; R11.1: datasources too.
            (SuperAdmin, ADMIN_CONN, A::Manage, Allowed), (Role::Admin, SYSTEM, A::Manage, Allowed),
            (Developer, USER_CONN, A::Manage, Allowed), (User, USER_CONN, A::Manage, Denied),
            (User, ADMIN_CONN, A::Manage, Denied), (User, SYSTEM, A::Manage, Denied),
            (SuperAdmin, ADMIN_CONN, A::ManageDatasources, Allowed), (Role::Admin, USER_CONN, A::ManageDatasources, Allowed),
            (Developer, SYSTEM, A::ManageDatasources, Allowed), (User, USER_CONN, A::ManageDatasources, Denied),
            // A raw call (method and URL of the caller's choosing) is the builders' "Test";
            // a plain user never spends any connection's credentials on one, not even their own.
            (SuperAdmin, SYSTEM, A::InvokeRaw, Allowed), (SuperAdmin, ADMIN_CONN, A::InvokeRaw, Allowed), (SuperAdmin, USER_CONN, A::InvokeRaw, Allowed),
            (Role::Admin, SYSTEM, A::InvokeRaw, Allowed), (Role::Admin, ADMIN_CONN, A::InvokeRaw, Allowed), (Role::Admin, USER_CONN, A::InvokeRaw, Allowed),
            (Developer, SYSTEM, A::InvokeRaw, Allowed), (Developer, ADMIN_CONN, A::InvokeRaw, Allowed), (Developer, USER_CONN, A::InvokeRaw, Allowed),
            (User, SYSTEM, A::InvokeRaw, Denied), (User, ADMIN_CONN, A::InvokeRaw, Denied), (User, USER_CONN, A::InvokeRaw, Denied),
            // R3.2: users open components over admin and system connections once authorized,
            // and over logged-in-user connections with their own account.
            (SuperAdmin, SYSTEM, A::UseInComponent, Allowed), (SuperAdmin, ADMIN_CONN, A::UseInComponent, Allowed), (SuperAdmin, USER_CONN, A::UseInComponent, Allowed),
            (Role::Admin, SYSTEM, A::UseInComponent, Allowed), (Role::Admin, ADMIN_CONN, A::UseInComponent, Allowed), (Role::Admin, USER_CONN, A::UseInComponent, Allowed),
            (Developer, SYSTEM, A::UseInComponent, Allowed), (Developer, ADMIN_CONN, A::UseInComponent, Allowed), (Developer, USER_CONN, A::UseInComponent, Allowed),
            (User, SYSTEM, A::UseInComponent, Allowed), (User, ADMIN_CONN, A::UseInComponent, Allowed), (User, USER_CONN, A::UseInComponent, Allowed),
            // Issue 13: admins and super admins see and revoke each user's authorization of a
            // logged-in-user connection; developers and users only their own.
            (SuperAdmin, USER_CONN, A::OthersAuthorizations, Allowed), (Role::Admin, USER_CONN, A::OthersAuthorizations, Allowed),
            (Developer, USER_CONN, A::OthersAuthorizations, Denied), (User, USER_CONN, A::OthersAuthorizations, Denied),
            (SuperAdmin, ADMIN_CONN, A::OthersAuthorizations, Denied), (Role::Admin, SYSTEM, A::OthersAuthorizations, Denied),
        ];
        for &(role, kind, action, expected) in table {
            assert_eq!(decide(role, kind, action, PLAIN), expected, "{role:?} × {kind:?} × {action:?}");
        }
    }

    /// R3.5: a logged-in-user connection used in datasources or schedules cannot be authorized by
    /// application users until an admin configured the primary account.
    #[test]
    fn primary_account_gate() {
        let waiting = Context { used_in_datasource_or_schedule: true, primary_account_configured: false };
        let ready = Context { used_in_datasource_or_schedule: true, primary_account_configured: true };
        for role in [Developer, User] {
            assert_eq!(decide(role, USER_CONN, Action::Authorize, waiting), ContactAdmin(Contact::Admin));
            assert_eq!(decide(role, USER_CONN, Action::UseUnauthorized, waiting), ContactAdmin(Contact::Admin));
            assert_eq!(decide(role, USER_CONN, Action::Authorize, ready), Allowed);
        }
        for role in [SuperAdmin, Role::Admin] {
            assert_eq!(decide(role, USER_CONN, Action::Authorize, waiting), Allowed);
        }
        // The gate concerns logged-in-user connections only.
        assert_eq!(decide(Developer, SYSTEM, Action::Authorize, waiting), Allowed);
    }

    #[test]
    fn plain_users_always_work_in_production() {
        use Environment::*;
        #[rustfmt::skip]
        let table: &[(Role, Option<Environment>, Environment)] = &[
            (SuperAdmin, Some(Development), Development), (Role::Admin, Some(Stage), Stage),
            (Developer, Some(Development), Development), (Developer, None, Production),
            (User, Some(Development), Production), (User, Some(Stage), Production),
            (User, Some(Production), Production), (User, None, Production),
        ];
        for &(role, requested, expected) in table {
            assert_eq!(environment(role, requested), expected, "{role:?} asking for {requested:?}");
        }
    }

    /// No combination is left undecided by accident: every one answers, and a plain user can
    /// never manage anything.
    #[test]
    fn plain_users_never_manage() {
        for kind in ConnectionType::ALL {
            for action in [Action::Manage, Action::ManageDatasources, Action::InvokeRaw, Action::OthersAuthorizations] {
                assert_eq!(decide(User, kind, action, PLAIN), Denied);
            }
        }
    }

    #[test]
    fn api_keys_are_for_admins_and_hosts_never_grant_super_admin() {
        for role in Role::ALL {
            let admin = matches!(role, SuperAdmin | Role::Admin);
            assert_eq!(decide_workspace(role, WorkspaceAction::ManageApiKeys), admin, "{role:?}");
            assert_eq!(decide_workspace(role, WorkspaceAction::ManageWebhooks), role.is_builder(), "{role:?}");
            assert_eq!(host_may_grant(role), role != SuperAdmin, "{role:?}");
        }
    }

    /// Issue 13: exporting and importing connections is for builders, like managing them.
    #[test]
    fn promotion_is_for_builders() {
        use WorkspaceAction::PromoteConnections;
        #[rustfmt::skip]
        let table: &[(Role, bool)] = &[
            (SuperAdmin, true), (Role::Admin, true), (Developer, true), (User, false),
        ];
        for &(role, expected) in table {
            assert_eq!(decide_workspace(role, PromoteConnections), expected, "{role:?}");
            assert_eq!(
                decide_workspace(role, PromoteConnections),
                decide(role, ADMIN_CONN, Action::Manage, PLAIN).is_allowed()
            );
        }
    }
}
