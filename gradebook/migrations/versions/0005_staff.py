"""staff pages (issue 14): job phase times, worker heartbeats, regrades with the scores before
them, and students' regrade requests with their threads.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('worker_heartbeats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('lanes', sa.String(length=100), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
    sa.Column('current_job_id', sa.Integer(), nullable=True),
    sa.Column('jobs_done', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_heartbeats')),
    sa.UniqueConstraint('name', name=op.f('uq_worker_heartbeats_name'))
    )
    op.create_table('regrade_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('student_pk', sa.Integer(), nullable=False),
    sa.Column('test_name', sa.String(length=500), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_by', sa.String(length=320), nullable=True),
    sa.ForeignKeyConstraint(['student_pk'], ['students.id'], name=op.f('fk_regrade_requests_student_pk_students'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_regrade_requests_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regrade_requests'))
    )
    op.create_index(op.f('ix_regrade_requests_student_pk'), 'regrade_requests', ['student_pk'], unique=False)
    op.create_index(op.f('ix_regrade_requests_submission_id'), 'regrade_requests', ['submission_id'], unique=False)
    op.create_table('regrade_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=320), nullable=False),
    sa.Column('author_role', sa.String(length=20), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['regrade_requests.id'], name=op.f('fk_regrade_messages_request_id_regrade_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regrade_messages'))
    )
    op.create_index(op.f('ix_regrade_messages_request_id'), 'regrade_messages', ['request_id'], unique=False)
    op.create_table('regrades',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('batch', sa.String(length=64), nullable=False),
    sa.Column('requested_by', sa.String(length=320), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('old_run_id', sa.String(length=200), nullable=True),
    sa.Column('old_score', sa.Float(), nullable=True),
    sa.Column('old_max_score', sa.Float(), nullable=True),
    sa.Column('old_tests', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['grading_jobs.id'], name=op.f('fk_regrades_job_id_grading_jobs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_regrades_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regrades'))
    )
    op.create_index(op.f('ix_regrades_batch'), 'regrades', ['batch'], unique=False)
    op.create_index(op.f('ix_regrades_job_id'), 'regrades', ['job_id'], unique=False)
    op.create_index(op.f('ix_regrades_submission_id'), 'regrades', ['submission_id'], unique=False)
    with op.batch_alter_table('grading_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prepared_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('ran_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('grading_jobs', schema=None) as batch_op:
        batch_op.drop_column('ran_at')
        batch_op.drop_column('prepared_at')
    op.drop_index(op.f('ix_regrades_submission_id'), table_name='regrades')
    op.drop_index(op.f('ix_regrades_job_id'), table_name='regrades')
    op.drop_index(op.f('ix_regrades_batch'), table_name='regrades')
    op.drop_table('regrades')
    op.drop_index(op.f('ix_regrade_messages_request_id'), table_name='regrade_messages')
    op.drop_table('regrade_messages')
    op.drop_index(op.f('ix_regrade_requests_submission_id'), table_name='regrade_requests')
    op.drop_index(op.f('ix_regrade_requests_student_pk'), table_name='regrade_requests')
    op.drop_table('regrade_requests')
    op.drop_table('worker_heartbeats')
