package nexus

// SystemPrincipal returns the principal the installation's own commands act as in an organization (orgID empty
// when there is none yet, to create one): the operator of cmd/nexus, with the rights of an admin but no user,
// session or client, so that the audit log records its changes without an actor.
func SystemPrincipal(orgID string) Principal {
	return Principal{OrganizationID: orgID, Role: RoleAdmin}
}
