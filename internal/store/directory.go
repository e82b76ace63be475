package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// Directory registers clients (for the admin commands and the dev seed) and creates organizations and users
// without the domain's rules or audit entries, as fixtures for tests: the commands create organizations and users
// through users.Service.
type Directory struct{ db *DB }

// NewDirectory returns the directory store over db.
func NewDirectory(db *DB) *Directory { return &Directory{db: db} }

// Organization is a tenant.
type Organization = users.Organization

// NewClient describes a client to register.
type NewClient struct {
	ClientID       string
	Name           string
	OrganizationID string // empty: usable by every organization
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// CreateOrganization stores a new organization, without an audit entry: a fixture for tests (the commands
// create organizations through users.Service).
func (d *Directory) CreateOrganization(ctx context.Context, name string) (Organization, error) {
	o, err := createOrganization(d.db.gorm.WithContext(ctx), name)
	return o, translate(err)
}

// createOrganization stores a new organization.
func createOrganization(db *gorm.DB, name string) (Organization, error) {
	t := now()
	r := organizationRow{ID: uuid.NewString(), Name: name, CreatedAt: t, UpdatedAt: t}
	if err := db.Create(&r).Error; err != nil {
		return Organization{}, err
	}
	return Organization{ID: r.ID, Name: r.Name, CreatedAt: t}, nil
}

// OrganizationExists reports whether an organization with the given id exists.
func (d *Directory) OrganizationExists(ctx context.Context, id string) (bool, error) {
	id, ok := canonicalUUID(id)
	if !ok {
		return false, nil
	}
	var n int64
	if err := d.db.gorm.WithContext(ctx).Model(&organizationRow{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return false, translate(err)
	}
	return n > 0, nil
}

// CreateClient registers a client. A client_id already registered is a conflict.
func (d *Directory) CreateClient(ctx context.Context, c NewClient) (string, error) {
	if id, ok := canonicalUUID(c.OrganizationID); ok {
		c.OrganizationID = id
	}
	t := now()
	r := clientRow{ID: uuid.NewString(), ClientID: c.ClientID, Name: c.Name, OrganizationID: optString(c.OrganizationID),
		CreatedAt: t, UpdatedAt: t}
	if err := d.db.gorm.WithContext(ctx).Create(&r).Error; err != nil {
		return "", translate(err)
	}
	return r.ID, nil
}

// SetClientDisabled disables or re-enables a client.
func (d *Directory) SetClientDisabled(ctx context.Context, clientID string, disabled bool) error {
	var at *time.Time
	if disabled {
		t := now()
		at = &t
	}
	res := d.db.gorm.WithContext(ctx).Model(&clientRow{}).Where("client_id = ? AND client_id <> ''", clientID). // not the decoy
															Updates(map[string]any{"disabled_at": at, "updated_at": now()})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return nexus.ErrNotFound
	}
	return nil
}

// CreateUser stores a new user with the given password hash. The id and timestamps are filled in; an email
// already in use anywhere (case-insensitively) is a conflict.
func (d *Directory) CreateUser(ctx context.Context, u nexus.User, passwordHash string) (nexus.User, error) {
	return createUser(d.db.gorm.WithContext(ctx), u, passwordHash)
}

// SetUserStatus changes a user's status, a fixture for tests: deactivating revokes the user's live sessions in
// the same transaction, with the reason users.Service gives, but no rule is checked and nothing is audited.
func (d *Directory) SetUserStatus(ctx context.Context, userID string, status nexus.UserStatus) error {
	id, ok := canonicalUUID(userID)
	if !ok {
		return nexus.ErrNotFound
	}
	var revoked []string
	err := d.db.transaction(ctx, func(tx *gorm.DB) error {
		t := now()
		res := tx.Model(&userRow{}).Where("id = ?", id).Updates(map[string]any{"status": string(status), "updated_at": t})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nexus.ErrNotFound
		}
		if status == nexus.UserInactive {
			var err error
			revoked, err = revokeUserSessions(tx, d.db.dialect, id, users.RevokedDeactivated, t)
			return err
		}
		return nil
	})
	if err == nil {
		d.db.revoked(revoked)
	}
	return translate(err)
}

// Empty reports whether the database holds no organization yet (a first start).
func (d *Directory) Empty(ctx context.Context) (bool, error) {
	var n int64
	err := d.db.gorm.WithContext(ctx).Model(&organizationRow{}).Limit(1).Count(&n).Error
	return n == 0, translate(err)
}

// Users returns the users store over the directory's database (over its transaction, inside Seed).
func (d *Directory) Users() *Users { return NewUsers(d.db) }

// Seed runs fn in one transaction with a Directory bound to it, so a multi-step seed lands whole or not at all.
// Inside it, only the writes of the Directory and of its Users (which all go through the transaction) may be
// used.
func (d *Directory) Seed(ctx context.Context, fn func(tx *Directory) error) error {
	return translate(d.db.transaction(ctx, func(tx *gorm.DB) error {
		return fn(&Directory{db: &DB{gorm: tx, sql: d.db.sql, dialect: d.db.dialect, url: d.db.url}})
	}))
}
