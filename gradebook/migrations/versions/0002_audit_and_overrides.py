"""gradebook records: the audit trail of changes made by hand, and per-test score overrides
(issue 12).

The service's tables come in 0003 on top of it.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('test_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_pk', sa.Integer(), nullable=False),
    sa.Column('assignment_pk', sa.Integer(), nullable=False),
    sa.Column('test_name', sa.String(length=500), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('set_by', sa.String(length=320), nullable=False),
    sa.Column('set_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_pk'], ['assignments.id'], name=op.f('fk_test_overrides_assignment_pk_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['student_pk'], ['students.id'], name=op.f('fk_test_overrides_student_pk_students'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_overrides')),
    sa.UniqueConstraint('student_pk', 'assignment_pk', 'test_name', name=op.f('uq_test_overrides_student_pk_assignment_pk_test_name'))
    )
    with op.batch_alter_table('test_overrides', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_test_overrides_student_pk'), ['student_pk'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('student', sa.String(length=100), nullable=False),
    sa.Column('assignment', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['course_id'], ['courses.id'], name=op.f('fk_audit_log_course_id_courses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_course_id'), ['course_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_course_id'))
    op.drop_table('audit_log')
    with op.batch_alter_table('test_overrides', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_test_overrides_student_pk'))
    op.drop_table('test_overrides')
