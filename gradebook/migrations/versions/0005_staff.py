"""staff roles, regrade requests, accommodations views (issue 14, staff pages).

Placeholder: empty until its tables land (the revision chain stays whole meanwhile).

Revision ID: 0005
Revises: 0004
"""

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
