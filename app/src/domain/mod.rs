//! Domain vocabulary shared by client and server: roles, connection types, environments and the
//! validated newtypes for names a person types. The client validates with the same `parse()` the
//! server enforces, so a form shows the same message before and after the round trip.

use serde::{Deserialize, Serialize};

closed_set! {
    /// Who a user is in a workspace.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Role ("role", "role") {
        SuperAdmin = "super_admin", "Super admin";
        Admin = "admin", "Admin";
        Developer = "developer", "Developer";
        User = "user", "User";
    }
}

impl Role {
    /// Super admins, admins and developers build and manage the application.
    pub fn is_builder(self) -> bool {
        !matches!(self, Role::User)
    }
}

closed_set! {
    /// Who a connection's authorization belongs to (R1.2). Answers name the variant; inputs may
    /// also give the stored form (`admin`, `user`), as the create form's choices do.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
    pub enum ConnectionType ("connection_type", "connection type") {
        /// Created by the platform for integrations; authorized by builders on behalf of the app.
        #[serde(alias = "system")]
        System = "system", "System connection";
        /// One authorization shared by every user, given by an admin (what a new connection is
        /// unless another type is chosen).
        #[default]
        #[serde(alias = "admin")]
        Admin = "admin", "Admin connection";
        /// Each user authorizes with their own account.
        #[serde(alias = "user")]
        LoggedInUser = "user", "User connection";
    }
}

impl ConnectionType {
    /// The word shown beside the type's icon in the panel ("Admin", "System", "User").
    pub fn short_label(self) -> &'static str {
        match self {
            ConnectionType::System => "System",
            ConnectionType::Admin => "Admin",
            ConnectionType::LoggedInUser => "User",
        }
    }
}

closed_set! {
    /// The environments an application is deployed to.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    pub enum Environment ("environment", "environment") {
        Development = "development", "Development";
        Stage = "stage", "Stage";
        Production = "production", "Production";
    }
}

closed_set! {
    /// How a connector authenticates against its service.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum AuthType ("auth_type", "authentication type") {
        OAuth2 = "oauth2", "OAuth2";
        ApiKey = "api_key", "API key";
        Basic = "basic", "Basic auth";
    }
}

closed_set! {
    /// The kinds of application component that can reference connections.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum ComponentKind ("kind", "component kind") {
        Form = "form", "Form";
        Page = "page", "Page";
        Report = "report", "Report";
        IntegrationReport = "integration_report", "Integration report";
        Workflow = "workflow", "Workflow";
        Function = "function", "Function";
        Blueprint = "blueprint", "Blueprint";
        Schedule = "schedule", "Schedule";
    }
}

impl ComponentKind {
    /// Whether live mode can show the component (the runtime runs forms, pages and integration
    /// reports; workflows, functions, schedules and the rest run behind them).
    pub fn has_live_view(self) -> bool {
        matches!(self, ComponentKind::Form | ComponentKind::Page | ComponentKind::IntegrationReport)
    }
}

mod ids;
mod names;
pub use ids::*;
pub use names::*;
