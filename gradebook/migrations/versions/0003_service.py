"""the grading service: accounts, API tokens, invitations, web sessions, grading jobs
(autograder/service/models.py).

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('login', sa.String(length=100), nullable=False),
    sa.Column('student_pk', sa.Integer(), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['course_id'], ['courses.id'], name=op.f('fk_service_users_course_id_courses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['student_pk'], ['students.id'], name=op.f('fk_service_users_student_pk_students'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_users')),
    sa.UniqueConstraint('course_id', 'login', name=op.f('uq_service_users_course_id_login')),
    sa.UniqueConstraint('student_pk', name=op.f('uq_service_users_student_pk'))
    )
    with op.batch_alter_table('service_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_users_course_id'), ['course_id'], unique=False)

    for table in ('api_tokens', 'invitations', 'web_sessions'):
        extra = {
            'api_tokens': [sa.Column('label', sa.String(length=200), nullable=False),
                           sa.Column('created_at', sa.DateTime(), nullable=False),
                           sa.Column('last_used_at', sa.DateTime(), nullable=True),
                           sa.Column('revoked_at', sa.DateTime(), nullable=True)],
            'invitations': [sa.Column('created_at', sa.DateTime(), nullable=False),
                            sa.Column('expires_at', sa.DateTime(), nullable=False),
                            sa.Column('used_at', sa.DateTime(), nullable=True)],
            'web_sessions': [sa.Column('created_at', sa.DateTime(), nullable=False),
                             sa.Column('expires_at', sa.DateTime(), nullable=False)],
        }[table]
        op.create_table(table,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        *extra,
        sa.ForeignKeyConstraint(['user_id'], ['service_users.id'], name=op.f(f'fk_{table}_user_id_service_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}')),
        sa.UniqueConstraint('token_hash', name=op.f(f'uq_{table}_token_hash'))
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f'ix_{table}_user_id'), ['user_id'], unique=False)

    op.create_table('grading_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('student_pk', sa.Integer(), nullable=False),
    sa.Column('assignment_pk', sa.Integer(), nullable=False),
    sa.Column('lane', sa.String(length=20), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('uploads', sa.JSON(), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('lease_token', sa.String(length=64), nullable=True),
    sa.Column('lease_owner', sa.String(length=200), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('run_id', sa.String(length=200), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('grading_s', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['assignment_pk'], ['assignments.id'], name=op.f('fk_grading_jobs_assignment_pk_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['student_pk'], ['students.id'], name=op.f('fk_grading_jobs_student_pk_students'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_grading_jobs_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grading_jobs'))
    )
    with op.batch_alter_table('grading_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_grading_jobs_claim', ['state', 'lane', 'priority', 'enqueued_at'], unique=False)
        batch_op.create_index('ix_grading_jobs_student_started', ['student_pk', 'started_at'], unique=False)
        batch_op.create_index('ix_grading_jobs_student_assignment', ['student_pk', 'assignment_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_grading_jobs_submission_id'), ['submission_id'], unique=False)


def downgrade() -> None:
    op.drop_table('grading_jobs')
    op.drop_table('web_sessions')
    op.drop_table('invitations')
    op.drop_table('api_tokens')
    op.drop_table('service_users')
