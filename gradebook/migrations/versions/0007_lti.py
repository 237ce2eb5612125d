"""LTI 1.3 platforms, links, passback status (issue 14).

Placeholder: empty until its tables land (the revision chain stays whole meanwhile).

Revision ID: 0007
Revises: 0006
"""

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
