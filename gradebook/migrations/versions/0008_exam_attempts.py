"""timed exam attempts (started_at, ends_at, the variant, honour code, finalisation) and exam
result releases (issue 15; autograder/service/models.py: ExamAttempt, ExamRelease).

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exam_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_pk', sa.Integer(), nullable=False),
    sa.Column('assignment_pk', sa.Integer(), nullable=False),
    sa.Column('variant', sa.String(length=100), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('honour_code_accepted_at', sa.DateTime(), nullable=True),
    sa.Column('client_address', sa.String(length=64), nullable=False),
    sa.Column('finalised_at', sa.DateTime(), nullable=True),
    sa.Column('finalised_by', sa.String(length=20), nullable=False),
    sa.Column('counted_submission_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assignment_pk'], ['assignments.id'], name=op.f('fk_exam_attempts_assignment_pk_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['counted_submission_id'], ['submissions.id'], name=op.f('fk_exam_attempts_counted_submission_id_submissions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['student_pk'], ['students.id'], name=op.f('fk_exam_attempts_student_pk_students'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exam_attempts')),
    sa.UniqueConstraint('student_pk', 'assignment_pk', name=op.f('uq_exam_attempts_student_pk_assignment_pk'))
    )
    op.create_index(op.f('ix_exam_attempts_assignment_pk'), 'exam_attempts', ['assignment_pk'], unique=False)
    op.create_index(op.f('ix_exam_attempts_student_pk'), 'exam_attempts', ['student_pk'], unique=False)
    op.create_table('exam_releases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_pk', sa.Integer(), nullable=False),
    sa.Column('released_at', sa.DateTime(), nullable=False),
    sa.Column('released_by', sa.String(length=320), nullable=False),
    sa.ForeignKeyConstraint(['assignment_pk'], ['assignments.id'], name=op.f('fk_exam_releases_assignment_pk_assignments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exam_releases')),
    sa.UniqueConstraint('assignment_pk', name=op.f('uq_exam_releases_assignment_pk'))
    )


def downgrade() -> None:
    op.drop_table('exam_releases')
    op.drop_index(op.f('ix_exam_attempts_student_pk'), table_name='exam_attempts')
    op.drop_index(op.f('ix_exam_attempts_assignment_pk'), table_name='exam_attempts')
    op.drop_table('exam_attempts')
