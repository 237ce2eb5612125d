"""similarity report runs (started from the staff similarity page) and reviewed pairs
(issue 14; autograder/service/models.py: SimilarityRun, SimilarityReview).

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('similarity_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_pk', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('started_by', sa.String(length=320), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('submissions', sa.Integer(), nullable=False),
    sa.Column('flagged', sa.Integer(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('output_dir', sa.Text(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_pk'], ['assignments.id'], name=op.f('fk_similarity_runs_assignment_pk_assignments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_similarity_runs'))
    )
    op.create_index(op.f('ix_similarity_runs_assignment_pk'), 'similarity_runs', ['assignment_pk'], unique=False)
    op.create_table('similarity_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_pk', sa.Integer(), nullable=False),
    sa.Column('name_a', sa.String(length=300), nullable=False),
    sa.Column('name_b', sa.String(length=300), nullable=False),
    sa.Column('similarity', sa.Float(), nullable=False),
    sa.Column('reviewed_by', sa.String(length=320), nullable=False),
    sa.Column('reviewed_at', sa.DateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_pk'], ['assignments.id'], name=op.f('fk_similarity_reviews_assignment_pk_assignments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_similarity_reviews')),
    sa.UniqueConstraint('assignment_pk', 'name_a', 'name_b', name=op.f('uq_similarity_reviews_assignment_pk_name_a_name_b'))
    )
    op.create_index(op.f('ix_similarity_reviews_assignment_pk'), 'similarity_reviews', ['assignment_pk'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_similarity_reviews_assignment_pk'), table_name='similarity_reviews')
    op.drop_table('similarity_reviews')
    op.drop_index(op.f('ix_similarity_runs_assignment_pk'), table_name='similarity_runs')
    op.drop_table('similarity_runs')
