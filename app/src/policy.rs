//! Who may do what with a connection: one pure function, decided on the server, tested as a table.
//!
//! Sources: seed 000 §2 (who creates and manages), §4 and §9 (who sees which connection types),
//! §5.1 (who is prompted to authorize an unauthorized connection, who is told to contact an
//! admin), §8 (datasources are for super admins, admins and developers) and §9 (a logged-in-user
//! connection used in datasources or schedules needs the admin's primary account first).

use crate::domain::{ConnectionType, Role};
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
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::View,
        Action::Authorize,
        Action::Revoke,
        Action::UseUnauthorized,
        Action::Manage,
        Action::ManageDatasources,
    ];
}

/// Facts about the connection that change the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// A logged-in-user connection used by a datasource or a schedule (seed 000 §9).
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
    pub fn message(self) -> &'static str {
        match self {
            Contact::Admin => "This connection is not authorized yet. Contact your admin to authorize it.",
            Contact::AdminOrSuperAdmin => {
                "This connection is not authorized yet. Contact your admin or super admin to authorize it."
            }
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
        Action::Manage | Action::ManageDatasources => {
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
    }
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
            // §4/§9: builders see every type, other users only logged-in-user connections.
            (SuperAdmin, SYSTEM, A::View, Allowed), (SuperAdmin, ADMIN_CONN, A::View, Allowed), (SuperAdmin, USER_CONN, A::View, Allowed),
            (Role::Admin, SYSTEM, A::View, Allowed), (Role::Admin, ADMIN_CONN, A::View, Allowed), (Role::Admin, USER_CONN, A::View, Allowed),
            (Developer, SYSTEM, A::View, Allowed), (Developer, ADMIN_CONN, A::View, Allowed), (Developer, USER_CONN, A::View, Allowed),
            (User, SYSTEM, A::View, Denied), (User, ADMIN_CONN, A::View, Denied), (User, USER_CONN, A::View, Allowed),
            // §5.1: who is prompted when a component uses an unauthorized connection.
            (SuperAdmin, ADMIN_CONN, A::UseUnauthorized, Prompt), (Role::Admin, ADMIN_CONN, A::UseUnauthorized, Prompt),
            (Developer, ADMIN_CONN, A::UseUnauthorized, ca), (User, ADMIN_CONN, A::UseUnauthorized, ca),
            (SuperAdmin, SYSTEM, A::UseUnauthorized, Prompt), (Role::Admin, SYSTEM, A::UseUnauthorized, Prompt),
            (Developer, SYSTEM, A::UseUnauthorized, Prompt), (User, SYSTEM, A::UseUnauthorized, cas),
            (SuperAdmin, USER_CONN, A::UseUnauthorized, Prompt), (Role::Admin, USER_CONN, A::UseUnauthorized, Prompt),
            (Developer, USER_CONN, A::UseUnauthorized, Prompt), (User, USER_CONN, A::UseUnauthorized, Prompt),
            // §5, §6, §9: authorizing (and switching) follows the same split.
            (SuperAdmin, ADMIN_CONN, A::Authorize, Allowed), (Role::Admin, ADMIN_CONN, A::Authorize, Allowed),
            (Developer, ADMIN_CONN, A::Authorize, ca), (User, ADMIN_CONN, A::Authorize, ca),
            (SuperAdmin, SYSTEM, A::Authorize, Allowed), (Role::Admin, SYSTEM, A::Authorize, Allowed),
            (Developer, SYSTEM, A::Authorize, Allowed), (User, SYSTEM, A::Authorize, cas),
            (SuperAdmin, USER_CONN, A::Authorize, Allowed), (Role::Admin, USER_CONN, A::Authorize, Allowed),
            (Developer, USER_CONN, A::Authorize, Allowed), (User, USER_CONN, A::Authorize, Allowed),
            // §7: revoking, by those who may authorize.
            (SuperAdmin, ADMIN_CONN, A::Revoke, Allowed), (Role::Admin, ADMIN_CONN, A::Revoke, Allowed),
            (Developer, ADMIN_CONN, A::Revoke, Denied), (User, ADMIN_CONN, A::Revoke, Denied),
            (SuperAdmin, SYSTEM, A::Revoke, Allowed), (Role::Admin, SYSTEM, A::Revoke, Allowed),
            (Developer, SYSTEM, A::Revoke, Allowed), (User, SYSTEM, A::Revoke, Denied),
            (SuperAdmin, USER_CONN, A::Revoke, Allowed), (User, USER_CONN, A::Revoke, Allowed),
            // §2: only super admins, admins and developers create and manage; §8: datasources too.
            (SuperAdmin, ADMIN_CONN, A::Manage, Allowed), (Role::Admin, SYSTEM, A::Manage, Allowed),
            (Developer, USER_CONN, A::Manage, Allowed), (User, USER_CONN, A::Manage, Denied),
            (User, ADMIN_CONN, A::Manage, Denied), (User, SYSTEM, A::Manage, Denied),
            (SuperAdmin, ADMIN_CONN, A::ManageDatasources, Allowed), (Role::Admin, USER_CONN, A::ManageDatasources, Allowed),
            (Developer, SYSTEM, A::ManageDatasources, Allowed), (User, USER_CONN, A::ManageDatasources, Denied),
        ];
        for &(role, kind, action, expected) in table {
            assert_eq!(decide(role, kind, action, PLAIN), expected, "{role:?} × {kind:?} × {action:?}");
        }
    }

    /// §9: a logged-in-user connection used in datasources or schedules cannot be authorized by
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

    /// No combination is left undecided by accident: every one answers, and a plain user can
    /// never manage anything.
    #[test]
    fn plain_users_never_manage() {
        for kind in ConnectionType::ALL {
            for action in [Action::Manage, Action::ManageDatasources] {
                assert_eq!(decide(User, kind, action, PLAIN), Denied);
            }
        }
    }
}
